//! Points and polygons of floor plans: area and containment.
//!
//! Owns: the pure functions `[site]` validation and the floor-plan renderer both need. Does not
//! own: layout or drawing (`crate::render::geometry`).

/// A point `(x, y)`.
pub type Pt = (f64, f64);

/// Area of a simple polygon (absolute value of the shoelace sum).
pub fn area(poly: &[Pt]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    (twice / 2.0).abs()
}

/// Whether `p` lies inside `poly` (even-odd rule; points on an edge may go either way).
pub fn contains(poly: &[Pt], p: Pt) -> bool {
    let n = poly.len();
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.1 > p.1) != (b.1 > p.1) {
            let x = a.0 + (p.1 - a.1) * (b.0 - a.0) / (b.1 - a.1);
            if p.0 < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}
