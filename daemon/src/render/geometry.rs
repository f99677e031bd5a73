//! Plane geometry for floor plans: the grid rooms without a polygon are laid out in, spreading
//! sensor markers inside a room, and filling a polygon with a translucent colour. Polygon area and
//! containment come from [`crate::model::plane`] (shared with `[site]` validation).
//!
//! Owns: pure functions over points `(x, y)` with y downwards. Does not own: what is drawn where
//! (`super::plan`).

use image::{Rgb, RgbImage};

pub(crate) use crate::model::plane::{Pt, contains};

/// An axis-aligned rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) w: f64,
    pub(crate) h: f64,
}

impl Rect {
    /// The rectangle's corners, clockwise from the top left.
    pub(crate) fn corners(self) -> Vec<Pt> {
        vec![
            (self.x, self.y),
            (self.x + self.w, self.y),
            (self.x + self.w, self.y + self.h),
            (self.x, self.y + self.h),
        ]
    }
}

/// `(min x, min y, max x, max y)` of the points (zeros for none).
pub(crate) fn bounds(poly: &[Pt]) -> (f64, f64, f64, f64) {
    if poly.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    poly.iter().fold(
        (
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ),
        |(x0, y0, x1, y1), &(x, y)| (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
    )
}

/// Distance from `p` to the nearest edge of `poly`.
pub(crate) fn edge_distance(poly: &[Pt], p: Pt) -> f64 {
    let n = poly.len();
    (0..n)
        .map(|i| segment_distance(poly[i], poly[(i + 1) % n], p))
        .fold(f64::INFINITY, f64::min)
}

fn segment_distance(a: Pt, b: Pt, p: Pt) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    dist((a.0 + t * dx, a.1 + t * dy), p)
}

/// Euclidean distance.
pub(crate) fn dist(a: Pt, b: Pt) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// `n` points inside `poly`, spread apart from each other and from the `fixed` points (markers
/// placed by hand, the room's label), and kept `margin` away from the walls when the room is
/// large enough. Deterministic: the same room gives the same points.
///
/// Candidates are a grid over the polygon's bounds. Markers start where each maximises its
/// distance to what is already placed (farthest-point order) and then relax (Lloyd's algorithm)
/// to the middle of the candidates nearest to them, so that they share the room evenly: two
/// markers in a long room sit at a quarter and three quarters of it, not at its middle and a
/// corner. Every marker stays on a candidate, so inside the polygon even when it is not convex.
pub(crate) fn spread(poly: &[Pt], fixed: &[Pt], n: usize, margin: f64) -> Vec<Pt> {
    let Some((candidates, cap)) = candidates(poly, n, margin) else {
        return Vec::new();
    };
    let mut out = farthest(&candidates, fixed, n, cap);
    relax(&candidates, fixed, &mut out);
    out
}

/// The one point inside `poly` farthest from `fixed` (and from the walls), without relaxing:
/// where a room's own colour shows.
pub(crate) fn clearest(poly: &[Pt], fixed: &[Pt], margin: f64) -> Option<Pt> {
    let (candidates, cap) = candidates(poly, 1, margin)?;
    farthest(&candidates, fixed, 1, cap).first().copied()
}

/// Grid points inside `poly` (at most about [`MAX_CANDIDATES`]) with their distance to the
/// walls, keeping `margin` from them when at least `n` points can; and the distance beyond
/// which a marker is "far enough". A sliver thinner than the grid gives its corners' mean.
fn candidates(poly: &[Pt], n: usize, margin: f64) -> Option<(Vec<(Pt, f64)>, f64)> {
    if n == 0 || poly.len() < 3 || poly.iter().any(|p| !(p.0.is_finite() && p.1.is_finite())) {
        return None;
    }
    let (x0, y0, x1, y1) = bounds(poly);
    let step = (((x1 - x0) * (y1 - y0)) / MAX_CANDIDATES)
        .sqrt()
        .max((x1 - x0).min(y1 - y0) / 24.0)
        .max(2.0);
    let mut all: Vec<(Pt, f64)> = Vec::new();
    let mut y = y0 + step / 2.0;
    while y < y1 {
        let mut x = x0 + step / 2.0;
        while x < x1 {
            if contains(poly, (x, y)) {
                all.push(((x, y), edge_distance(poly, (x, y))));
            }
            x += step;
        }
        y += step;
    }
    let wide: Vec<(Pt, f64)> = all.iter().copied().filter(|(_, d)| *d >= margin).collect();
    if wide.len() >= n {
        all = wide;
    }
    if all.is_empty() {
        let c = poly.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
        let len = poly.len() as f64;
        all.push(((c.0 / len, c.1 / len), 0.0));
    }
    Some((all, ((x1 - x0).hypot(y1 - y0) / 2.0).max(1.0)))
}

/// Grid points per room: enough for smooth placement, few enough to be cheap.
const MAX_CANDIDATES: f64 = 600.0;

/// Farthest-point order: each pick maximises its distance to what is placed (capped, so that a
/// lone marker does not flee to a corner) plus half its distance to the walls.
fn farthest(candidates: &[(Pt, f64)], fixed: &[Pt], n: usize, cap: f64) -> Vec<Pt> {
    let mut placed: Vec<Pt> = fixed.to_vec();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut best: Option<(f64, Pt)> = None;
        for &(p, wall) in candidates {
            let near2 = placed
                .iter()
                .map(|q| dist2(*q, p))
                .fold(f64::INFINITY, f64::min);
            let score = near2.sqrt().min(cap) + 0.5 * wall;
            if best.is_none_or(|(s, _)| score > s + 1e-9) {
                best = Some((score, p));
            }
        }
        let Some((_, p)) = best else { break };
        placed.push(p);
        out.push(p);
    }
    out
}

/// Lloyd iterations: each marker moves to the candidate nearest the mean of the candidates
/// closer to it than to any other marker or fixed point.
fn relax(candidates: &[(Pt, f64)], fixed: &[Pt], markers: &mut [Pt]) {
    for _ in 0..10 {
        let mut sums = vec![(0.0, 0.0, 0usize); markers.len()];
        for &(p, _) in candidates {
            let mut best = (f64::INFINITY, None);
            for q in fixed {
                let d = dist2(*q, p);
                if d < best.0 {
                    best = (d, None);
                }
            }
            for (i, q) in markers.iter().enumerate() {
                let d = dist2(*q, p);
                if d < best.0 {
                    best = (d, Some(i));
                }
            }
            if let (_, Some(i)) = best {
                sums[i].0 += p.0;
                sums[i].1 += p.1;
                sums[i].2 += 1;
            }
        }
        let mut moved = false;
        for (m, (sx, sy, count)) in markers.iter_mut().zip(sums) {
            if count == 0 {
                continue;
            }
            let mean = (sx / count as f64, sy / count as f64);
            let snapped = candidates
                .iter()
                .map(|(p, _)| *p)
                .min_by(|a, b| dist2(*a, mean).total_cmp(&dist2(*b, mean)))
                .unwrap_or(*m);
            moved |= snapped != *m;
            *m = snapped;
        }
        if !moved {
            break;
        }
    }
}

/// Squared distance (for comparisons).
fn dist2(a: Pt, b: Pt) -> f64 {
    (a.0 - b.0) * (a.0 - b.0) + (a.1 - b.1) * (a.1 - b.1)
}

/// Lays `n` cells out in rows inside `area`: as many columns as fit at `min_w` pixels (at most
/// `n`), every cell `cell_h` high, `gap` pixels apart.
pub(crate) fn grid(n: usize, area: Rect, min_w: f64, cell_h: f64, gap: f64) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let fit = ((area.w + gap) / (min_w + gap)).floor().max(1.0) as usize;
    let mut cols = fit.min(n);
    // Balance the rows: 5 cells in 4 columns become 3 + 2, not 4 + 1.
    let rows = n.div_ceil(cols);
    cols = n.div_ceil(rows);
    let w = (area.w - gap * (cols as f64 - 1.0)) / cols as f64;
    (0..n)
        .map(|i| Rect {
            x: area.x + (i % cols) as f64 * (w + gap),
            y: area.y + (i / cols) as f64 * (cell_h + gap),
            w,
            h: cell_h,
        })
        .collect()
}

/// Height of the grid [`grid`] makes for `n` cells.
pub(crate) fn grid_height(n: usize, width: f64, min_w: f64, cell_h: f64, gap: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let fit = ((width + gap) / (min_w + gap)).floor().max(1.0) as usize;
    let rows = n.div_ceil(fit.min(n));
    rows as f64 * cell_h + (rows as f64 - 1.0) * gap
}

/// Fills `poly` (pixels) with `colour` blended at `alpha` (0 transparent, 1 opaque) over what is
/// drawn, by the even-odd rule at pixel centres. Never panics, whatever the polygon (imageproc's
/// filler can index out of bounds on some shapes with horizontal edges).
pub(crate) fn fill_polygon(img: &mut RgbImage, poly: &[Pt], colour: Rgb<u8>, alpha: f64) {
    let n = poly.len();
    if n < 3 || poly.iter().any(|p| !(p.0.is_finite() && p.1.is_finite())) {
        return;
    }
    let (w, h) = (img.width() as f64, img.height() as f64);
    let (_, y0, _, y1) = bounds(poly);
    let first = y0.floor().max(0.0) as u32;
    let last = y1.ceil().min(h) as u32;
    let mut xs: Vec<f64> = Vec::with_capacity(8);
    for row in first..last {
        let yc = f64::from(row) + 0.5;
        xs.clear();
        for i in 0..n {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            // Half-open in y, so a vertex on the scanline counts once and pairs always match.
            if (a.1 <= yc && yc < b.1) || (b.1 <= yc && yc < a.1) {
                xs.push(a.0 + (yc - a.1) * (b.0 - a.0) / (b.1 - a.1));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            let from = (pair[0] - 0.5).ceil().max(0.0);
            let to = (pair[1] - 0.5).ceil().min(w);
            let mut x = from;
            while x < to {
                blend(img, x as u32, row, colour, alpha);
                x += 1.0;
            }
        }
    }
}

/// Blends one pixel (inside the image) towards `colour`.
pub(crate) fn blend(img: &mut RgbImage, x: u32, y: u32, colour: Rgb<u8>, alpha: f64) {
    if x >= img.width() || y >= img.height() {
        return;
    }
    let p = img.get_pixel_mut(x, y);
    if alpha >= 1.0 {
        *p = colour;
        return;
    }
    for c in 0..3 {
        let v = f64::from(p.0[c]) * (1.0 - alpha) + f64::from(colour.0[c]) * alpha;
        p.0[c] = v.round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plane::area;

    const L_SHAPE: [Pt; 6] = [
        (0.0, 0.0),
        (100.0, 0.0),
        (100.0, 40.0),
        (40.0, 40.0),
        (40.0, 100.0),
        (0.0, 100.0),
    ];

    #[test]
    fn area_and_containment() {
        assert_eq!(area(&L_SHAPE), 100.0 * 40.0 + 40.0 * 60.0);
        assert!(contains(&L_SHAPE, (20.0, 80.0)));
        assert!(contains(&L_SHAPE, (80.0, 20.0)));
        assert!(!contains(&L_SHAPE, (80.0, 80.0)));
        assert!(!contains(&L_SHAPE, (-1.0, 5.0)));
        assert_eq!(area(&[(0.0, 0.0), (1.0, 1.0)]), 0.0);
        assert_eq!(edge_distance(&L_SHAPE, (20.0, 50.0)), 20.0);
    }

    #[test]
    fn spread_points_are_inside_apart_and_off_the_walls() {
        for n in 1..=8 {
            let pts = spread(&L_SHAPE, &[], n, 8.0);
            assert_eq!(pts.len(), n);
            for p in &pts {
                assert!(contains(&L_SHAPE, *p), "{p:?} outside");
                assert!(edge_distance(&L_SHAPE, *p) >= 8.0, "{p:?} on a wall");
            }
            // Spread, not stacked: the usable band of each arm is 24 wide.
            for (i, a) in pts.iter().enumerate() {
                for b in &pts[i + 1..] {
                    assert!(dist(*a, *b) >= 10.0, "n={n}: {a:?} and {b:?} stacked");
                }
            }
        }
        // Two markers in a long room share it: a quarter and three quarters along.
        let long = Rect {
            x: 0.0,
            y: 0.0,
            w: 200.0,
            h: 40.0,
        }
        .corners();
        let mut two = spread(&long, &[], 2, 8.0);
        two.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            (two[0].0 - 50.0).abs() < 10.0 && (two[1].0 - 150.0).abs() < 10.0,
            "{two:?}"
        );
        // Same input, same output.
        assert_eq!(spread(&L_SHAPE, &[], 5, 8.0), spread(&L_SHAPE, &[], 5, 8.0));
        // A fixed point repels.
        let fixed = [(10.0, 10.0)];
        let p = spread(&L_SHAPE, &fixed, 1, 8.0)[0];
        assert!(dist(p, fixed[0]) > 30.0, "{p:?}");
        // A sliver still gets its markers.
        let sliver = [(0.0, 0.0), (50.0, 0.0), (50.0, 0.5), (0.0, 0.5)];
        assert_eq!(spread(&sliver, &[], 2, 8.0).len(), 2);
    }

    #[test]
    fn grid_balances_rows() {
        let area = Rect {
            x: 10.0,
            y: 20.0,
            w: 850.0,
            h: 0.0,
        };
        let cells = grid(5, area, 200.0, 100.0, 10.0);
        assert_eq!(cells.len(), 5);
        // 4 fit in a row; 5 cells make 2 rows of 3 + 2.
        assert_eq!(cells[2].y, 20.0);
        assert_eq!(cells[3].y, 130.0);
        assert!((cells[0].w - (850.0 - 20.0) / 3.0).abs() < 1e-9);
        assert_eq!(grid_height(5, 850.0, 200.0, 100.0, 10.0), 210.0);
        assert!(grid(0, area, 200.0, 100.0, 10.0).is_empty());
    }

    #[test]
    fn fill_covers_the_inside_only_and_survives_odd_shapes() {
        let mut img = RgbImage::from_pixel(120, 120, Rgb([255, 255, 255]));
        fill_polygon(&mut img, &L_SHAPE, Rgb([0, 0, 0]), 1.0);
        assert_eq!(img.get_pixel(20, 80).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(80, 80).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(110, 10).0, [255, 255, 255]);
        // Degenerate, repeated, off-canvas and non-finite shapes draw nothing wrong and never panic.
        for poly in [
            vec![(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)],
            vec![
                (-50.0, -50.0),
                (500.0, -40.0),
                (500.0, 500.0),
                (10.0, 10.0),
                (10.0, 10.0),
            ],
            vec![(0.0, 5.0), (50.0, 5.0), (50.0, 5.0), (0.0, 5.0)],
            vec![(0.0, 0.0), (f64::NAN, 3.0), (4.0, 4.0)],
        ] {
            fill_polygon(&mut img, &poly, Rgb([9, 9, 9]), 0.5);
        }
        let mut half = RgbImage::from_pixel(4, 4, Rgb([200, 100, 0]));
        fill_polygon(
            &mut half,
            &Rect {
                x: 0.0,
                y: 0.0,
                w: 4.0,
                h: 4.0,
            }
            .corners(),
            Rgb([0, 100, 200]),
            0.5,
        );
        assert_eq!(half.get_pixel(1, 1).0, [100, 100, 100]);
    }
}
