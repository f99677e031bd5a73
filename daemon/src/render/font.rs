//! The embedded font (DejaVu Sans, which has Latin, Cyrillic and the symbols we use: °, ₂, —) and
//! the text primitives of the floor plan; the same font is registered with plotters for charts.
//!
//! Owns: the font bytes (`daemon/assets/fonts/DejaVuSans.ttf`, licence beside it), measuring and
//! drawing one line of text. Nothing is read from the system's fonts.

use std::sync::OnceLock;

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_text_mut;

use super::RenderError;
use super::geometry::{Rect, fill_polygon};

/// DejaVu Sans 2.37 (Bitstream Vera licence, see `assets/fonts/DejaVuSans-LICENSE.txt`).
pub(crate) static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the font is registered under with plotters.
pub(crate) const FAMILY: &str = "markoff-sans";

/// The parsed font.
///
/// # Errors
/// [`RenderError::Font`] if the embedded file does not parse (a broken build).
pub(crate) fn font() -> Result<&'static FontRef<'static>, RenderError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or(RenderError::Font)
}

/// Registers the font with plotters (once per process), as [`FAMILY`] and as `sans-serif`
/// (plotters' default family), so charts never look for system fonts.
///
/// # Errors
/// [`RenderError::Font`] if plotters rejects the font.
pub(crate) fn register_with_plotters() -> Result<(), RenderError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = DONE.get_or_init(|| {
        [FAMILY, "sans-serif"].into_iter().all(|family| {
            plotters::style::register_font(family, plotters::style::FontStyle::Normal, FONT_BYTES)
                .is_ok()
        })
    });
    if *ok { Ok(()) } else { Err(RenderError::Font) }
}

/// Text of one size on the floor plan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pen {
    font: &'static FontRef<'static>,
    size: f32,
}

impl Pen {
    /// A pen of `size` pixels.
    pub(crate) fn new(font: &'static FontRef<'static>, size: f32) -> Self {
        Self { font, size }
    }

    /// Width of `text` in pixels.
    pub(crate) fn width(self, text: &str) -> f64 {
        let scaled = self.font.as_scaled(PxScale::from(self.size));
        let mut w = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                w += scaled.kern(p, id);
            }
            w += scaled.h_advance(id);
            prev = Some(id);
        }
        f64::from(w.ceil())
    }

    /// Height of a line (ascent to descent) in pixels.
    pub(crate) fn height(self) -> f64 {
        f64::from(
            self.font
                .as_scaled(PxScale::from(self.size))
                .height()
                .ceil(),
        )
    }

    /// Draws `text` with its top-left corner at `(x, y)`.
    pub(crate) fn draw(self, img: &mut RgbImage, colour: Rgb<u8>, x: f64, y: f64, text: &str) {
        if text.is_empty() || !(x.is_finite() && y.is_finite()) {
            return;
        }
        draw_text_mut(
            img,
            colour,
            x.round() as i32,
            y.round() as i32,
            PxScale::from(self.size),
            self.font,
            text,
        );
    }

    /// Draws `text` on a box of `background` (blended at `alpha`) with `pad` pixels around it;
    /// returns the box.
    pub(crate) fn draw_boxed(
        self,
        img: &mut RgbImage,
        (colour, background, alpha): (Rgb<u8>, Rgb<u8>, f64),
        x: f64,
        y: f64,
        text: &str,
    ) -> Rect {
        let pad = 2.0;
        let r = Rect {
            x: x - pad,
            y: y - pad,
            w: self.width(text) + 2.0 * pad,
            h: self.height() + 2.0 * pad,
        };
        fill_polygon(img, &r.corners(), background, alpha);
        self.draw(img, colour, x, y, text);
        r
    }
}

/// Shortens `text` with "…" until it fits `max` pixels with `pen`.
pub(crate) fn fit(pen: Pen, text: &str, max: f64) -> String {
    if pen.width(text) <= max {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>() + "…";
        if pen.width(&s) <= max {
            return s;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use ab_glyph::{Font as _, GlyphId, PxScale};

    use super::*;

    /// Coverage bitmap of one glyph at 32 px: (width, height, coverage per pixel).
    fn bitmap(c: char) -> Option<(u32, u32, Vec<u8>)> {
        let f = font().unwrap();
        let g = f.glyph_id(c).with_scale(PxScale::from(32.0));
        let outlined = f.outline_glyph(g)?;
        let b = outlined.px_bounds();
        let (w, h) = (b.width() as u32 + 1, b.height() as u32 + 1);
        let mut cov = vec![0u8; (w * h) as usize];
        outlined.draw(|x, y, v| {
            if let Some(p) = cov.get_mut((y * w + x) as usize) {
                *p = (v * 255.0) as u8;
            }
        });
        Some((w, h, cov))
    }

    #[test]
    fn cyrillic_glyphs_are_real_glyphs_not_boxes() {
        let f = font().unwrap();
        let notdef = bitmap_of_id(GlyphId(0));
        for c in "Этаж Температура Влажность Щёлково ЖЭК №"
            .chars()
            .filter(|c| !c.is_whitespace())
        {
            let id = f.glyph_id(c);
            assert_ne!(id, GlyphId(0), "{c:?} maps to .notdef");
            let (w, h, cov) = bitmap(c).unwrap_or_else(|| panic!("{c:?} has no outline"));
            let inked = cov.iter().filter(|v| **v > 128).count();
            assert!(inked > 10, "{c:?} draws almost nothing");
            assert!(inked < (w * h) as usize * 9 / 10, "{c:?} is a filled block");
            assert_ne!(Some((w, h, cov)), notdef, "{c:?} draws the .notdef box");
        }
        // Distinct letters look distinct (a font that boxes everything draws one shape).
        assert_ne!(bitmap('Ж'), bitmap('Ш'));
        assert_ne!(bitmap('°'), None);
        assert_ne!(f.glyph_id('₂'), GlyphId(0));
    }

    fn bitmap_of_id(id: GlyphId) -> Option<(u32, u32, Vec<u8>)> {
        let f = font().unwrap();
        let outlined = f.outline_glyph(id.with_scale(PxScale::from(32.0)))?;
        let b = outlined.px_bounds();
        let (w, h) = (b.width() as u32 + 1, b.height() as u32 + 1);
        let mut cov = vec![0u8; (w * h) as usize];
        outlined.draw(|x, y, v| {
            if let Some(p) = cov.get_mut((y * w + x) as usize) {
                *p = (v * 255.0) as u8;
            }
        });
        Some((w, h, cov))
    }

    #[test]
    fn a_russian_line_inks_the_picture_where_it_is_drawn() {
        let pen = Pen::new(font().unwrap(), 24.0);
        let text = "Этаж 3 — Щёлково";
        let mut img = RgbImage::from_pixel(400, 60, Rgb([255, 255, 255]));
        pen.draw(&mut img, Rgb([0, 0, 0]), 10.0, 10.0, text);
        let w = pen.width(text);
        assert!(w > 150.0 && w < 300.0, "{w}");
        let dark = |x0: u32, x1: u32| {
            (x0..x1)
                .flat_map(|x| (0..60).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100)
                .count()
        };
        assert!(dark(10, 10 + w as u32) > 300, "the text is not drawn");
        assert_eq!(
            dark(10 + w as u32 + 5, 400),
            0,
            "ink beyond the measured width"
        );
        assert_eq!(fit(pen, text, 1e6), text);
        let short = fit(pen, text, 80.0);
        assert!(short.ends_with('…') && pen.width(&short) <= 80.0, "{short}");
        register_with_plotters().unwrap();
    }
}
