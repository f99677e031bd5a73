//! The request planner: the fewest reads that cover a device's points.
//!
//! Points are grouped per register table and sorted by address; a read grows while the next
//! point is within `max_gap` registers (bits for coils) of it and the read stays within the
//! protocol limit (125 registers / 2000 bits, or the device's lower limit). A read never covers
//! a **learned hole**: a range the device answered "illegal data address" (exception 02) for, or a
//! boundary it refuses to read across. Holes are learned at run time by bisecting a rejected read
//! ([`split`]) and are remembered across restarts by the poller.

use serde::{Deserialize, Serialize};

use super::config::{Optimization, RegisterKind};

/// One point as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanPoint {
    /// Index in the device's point list.
    pub index: usize,
    /// Register table.
    pub kind: RegisterKind,
    /// First protocol address.
    pub address: u16,
    /// Registers (or bits) it spans.
    pub words: u16,
}

impl PlanPoint {
    fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.words)
    }
}

/// One read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Register table.
    pub kind: RegisterKind,
    /// First address read.
    pub start: u16,
    /// Registers (or bits) read.
    pub count: u16,
    /// The points it serves, as indices into the device's point list, in address order.
    pub points: Vec<usize>,
}

impl Block {
    /// One past the last address read.
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

/// Limits of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Grouping strategy.
    pub optimization: Optimization,
    /// Largest gap filled.
    pub max_gap: u16,
    /// Largest register read.
    pub max_registers: u16,
    /// Largest bit read.
    pub max_bits: u16,
}

/// A range a read must not cover: `[start, end)`; when `start == end` it is a boundary a read
/// must not cross (the device answers reads on either side, but not across).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hole {
    /// Table.
    pub kind: RegisterKind,
    /// First address of the hole (or the boundary).
    pub start: u16,
    /// One past the last address (equal to `start` for a boundary).
    pub end: u32,
}

impl Hole {
    /// Whether a multi-point read of `[start, end)` in `kind` would touch this hole.
    fn blocks(&self, kind: RegisterKind, start: u32, end: u32) -> bool {
        if self.kind != kind {
            return false;
        }
        let hs = u32::from(self.start);
        if hs == self.end {
            start < hs && hs < end
        } else {
            start < self.end && hs < end
        }
    }
}

/// Plans the reads for `points`.
pub fn plan(points: &[PlanPoint], limits: &Limits, holes: &[Hole]) -> Vec<Block> {
    let mut sorted: Vec<&PlanPoint> = points.iter().collect();
    sorted.sort_by_key(|p| (p.kind, p.address, p.words));
    let mut blocks: Vec<Block> = Vec::new();
    let mut current: Option<(Block, bool)> = None; // (block, touches a hole -> must stay alone)
    for p in sorted {
        let alone = holes.iter().any(|h| {
            h.blocks(p.kind, u32::from(p.address), p.end()) || {
                let hs = u32::from(h.start);
                h.kind == p.kind && hs != h.end && hs < p.end() && u32::from(p.address) < h.end
            }
        });
        if let Some((b, b_alone)) = current.as_mut() {
            let max_len = if b.kind.is_bits() {
                limits.max_bits
            } else {
                limits.max_registers
            };
            let new_end = b.end().max(p.end());
            let gap = i64::from(p.address) - i64::from(b.end());
            let allowed_gap = match limits.optimization {
                Optimization::None => -1,
                Optimization::Contiguous => 0,
                Optimization::MaxInsert => i64::from(limits.max_gap),
                Optimization::Aggressive => i64::from(max_len),
            };
            let fits = b.kind == p.kind
                && !*b_alone
                && !alone
                && gap <= allowed_gap
                && new_end - u32::from(b.start) <= u32::from(max_len)
                && !holes
                    .iter()
                    .any(|h| h.blocks(p.kind, u32::from(b.start), new_end));
            if fits {
                b.count = u16::try_from(new_end - u32::from(b.start)).unwrap_or(u16::MAX);
                b.points.push(p.index);
                continue;
            }
        }
        if let Some((b, _)) = current.take() {
            blocks.push(b);
        }
        current = Some((
            Block {
                kind: p.kind,
                start: p.address,
                count: p.words,
                points: vec![p.index],
            },
            alone,
        ));
    }
    if let Some((b, _)) = current {
        blocks.push(b);
    }
    blocks
}

/// Splits a rejected multi-point block into two halves by points (bisection). Returns `None`
/// for a single-point block.
pub fn split(block: &Block, points: &[PlanPoint]) -> Option<(Block, Block)> {
    if block.points.len() < 2 {
        return None;
    }
    let mid = block.points.len() / 2;
    let make = |ids: &[usize]| {
        let ps: Vec<&PlanPoint> = ids
            .iter()
            .filter_map(|i| points.iter().find(|p| p.index == *i))
            .collect();
        let start = ps.iter().map(|p| p.address).min().unwrap_or(block.start);
        let end = ps.iter().map(|p| p.end()).max().unwrap_or(u32::from(start));
        Block {
            kind: block.kind,
            start,
            count: u16::try_from(end - u32::from(start)).unwrap_or(u16::MAX),
            points: ids.to_vec(),
        }
    };
    Some((make(&block.points[..mid]), make(&block.points[mid..])))
}

/// The hole learned when both halves of a rejected block read fine: the gap between them,
/// or the boundary where they meet.
pub fn hole_between(left: &Block, right: &Block) -> Hole {
    let start = u16::try_from(left.end().min(u32::from(right.start))).unwrap_or(right.start);
    Hole {
        kind: left.kind,
        start,
        end: u32::from(right.start),
    }
}

/// A point the device rejects on its own: it becomes a hole too, so it is never merged again.
pub fn hole_of_point(p: &PlanPoint) -> Hole {
    Hole {
        kind: p.kind,
        start: p.address,
        end: p.end().max(u32::from(p.address) + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(spec: &[(RegisterKind, u16, u16)]) -> Vec<PlanPoint> {
        spec.iter()
            .enumerate()
            .map(|(index, &(kind, address, words))| PlanPoint {
                index,
                kind,
                address,
                words,
            })
            .collect()
    }

    fn limits(optimization: Optimization) -> Limits {
        Limits {
            optimization,
            max_gap: 10,
            max_registers: 125,
            max_bits: 2000,
        }
    }

    use RegisterKind::{Coil, Holding, Input};

    #[test]
    fn merges_with_gap_fill_and_splits_tables() {
        let p = pts(&[
            (Holding, 0, 1),
            (Holding, 1, 2),
            (Holding, 10, 2),
            (Holding, 40, 1),
            (Input, 0, 2),
            (Coil, 5, 1),
            (Coil, 7, 1),
        ]);
        let b = plan(&p, &limits(Optimization::MaxInsert), &[]);
        let shape: Vec<(RegisterKind, u16, u16, usize)> = b
            .iter()
            .map(|b| (b.kind, b.start, b.count, b.points.len()))
            .collect();
        assert_eq!(
            shape,
            [
                (Holding, 0, 12, 3),
                (Holding, 40, 1, 1),
                (Input, 0, 2, 1),
                (Coil, 5, 3, 2)
            ]
        );
    }

    #[test]
    fn strategies_differ_as_documented() {
        let p = pts(&[(Holding, 0, 1), (Holding, 1, 1), (Holding, 3, 1)]);
        assert_eq!(plan(&p, &limits(Optimization::None), &[]).len(), 3);
        assert_eq!(plan(&p, &limits(Optimization::Contiguous), &[]).len(), 2);
        assert_eq!(plan(&p, &limits(Optimization::MaxInsert), &[]).len(), 1);
        // Aggressive fills any gap the read limit allows; max_insert only up to max_gap.
        let far = pts(&[(Holding, 0, 1), (Holding, 100, 1)]);
        assert_eq!(plan(&far, &limits(Optimization::MaxInsert), &[]).len(), 2);
        let one = plan(&far, &limits(Optimization::Aggressive), &[]);
        assert_eq!((one.len(), one[0].count), (1, 101));
        let too_far = pts(&[(Holding, 0, 1), (Holding, 125, 1)]);
        assert_eq!(
            plan(&too_far, &limits(Optimization::Aggressive), &[]).len(),
            2
        );
    }

    #[test]
    fn telegraf_optimisation_names_map_onto_the_strategies() {
        let parse = |name: &str| -> Optimization {
            serde_json::from_value(serde_json::Value::String(name.to_owned())).unwrap()
        };
        assert_eq!(parse("shrink"), Optimization::Contiguous);
        assert_eq!(parse("rearrange"), Optimization::Contiguous);
        assert_eq!(parse("aggressive"), Optimization::Aggressive);
        assert_eq!(parse("max_insert"), Optimization::MaxInsert);
    }

    #[test]
    fn respects_the_read_limit() {
        let p: Vec<PlanPoint> = (0..200)
            .map(|i| PlanPoint {
                index: i,
                kind: Holding,
                address: i as u16 * 2,
                words: 2,
            })
            .collect();
        let b = plan(&p, &limits(Optimization::MaxInsert), &[]);
        assert!(b.iter().all(|b| b.count <= 125));
        assert_eq!(b.iter().map(|b| b.points.len()).sum::<usize>(), 200);
        assert_eq!(b.len(), 4); // 400 registers / 124 per read (62 FLOAT32 each)
    }

    #[test]
    fn never_reads_across_a_learned_hole_or_boundary() {
        let p = pts(&[(Holding, 0, 2), (Holding, 4, 2), (Holding, 8, 2)]);
        let hole = Hole {
            kind: Holding,
            start: 2,
            end: 4,
        };
        let b = plan(&p, &limits(Optimization::MaxInsert), &[hole]);
        assert_eq!(
            b.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
            [(0, 2), (4, 6)]
        );
        let boundary = Hole {
            kind: Holding,
            start: 8,
            end: 8,
        };
        let b = plan(&p, &limits(Optimization::MaxInsert), &[boundary]);
        assert_eq!(
            b.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
            [(0, 6), (8, 2)]
        );
    }

    #[test]
    fn a_rejected_point_is_read_alone() {
        let p = pts(&[(Holding, 0, 1), (Holding, 1, 1), (Holding, 2, 1)]);
        let b = plan(
            &p,
            &limits(Optimization::MaxInsert),
            &[hole_of_point(&p[1])],
        );
        assert_eq!(
            b.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
            [(0, 1), (1, 1), (2, 1)]
        );
    }

    #[test]
    fn bisection_isolates_the_gap() {
        let p = pts(&[
            (Holding, 0, 2),
            (Holding, 2, 2),
            (Holding, 8, 2),
            (Holding, 10, 2),
        ]);
        let b = plan(&p, &limits(Optimization::MaxInsert), &[]);
        assert_eq!(b.len(), 1);
        let (l, r) = split(&b[0], &p).unwrap();
        assert_eq!((l.start, l.count, r.start, r.count), (0, 4, 8, 4));
        assert_eq!(
            hole_between(&l, &r),
            Hole {
                kind: Holding,
                start: 4,
                end: 8
            }
        );
        assert!(split(&l, &p).is_some());
        let single = Block {
            kind: Holding,
            start: 0,
            count: 2,
            points: vec![0],
        };
        assert!(split(&single, &p).is_none());
    }
}
