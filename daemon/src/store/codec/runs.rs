//! Run-length columns: qualities (mostly all good) and presence of a value (mostly all present).

use super::CodecError;
use super::bits::{BitReader, BitWriter};

/// Writes `items` as (item, run length) pairs: 8 bits and a residual-coded length - 1.
pub(crate) fn put_u8_runs(w: &mut BitWriter, items: impl Iterator<Item = u8>) {
    let mut current: Option<(u8, u64)> = None;
    for q in items {
        match &mut current {
            Some((c, n)) if *c == q => *n += 1,
            _ => {
                if let Some((c, n)) = current {
                    w.put(u64::from(c), 8);
                    w.residual_u(n - 1);
                }
                current = Some((q, 1));
            }
        }
    }
    if let Some((c, n)) = current {
        w.put(u64::from(c), 8);
        w.residual_u(n - 1);
    }
}

/// Reads `n` items written by [`put_u8_runs`].
pub(crate) fn get_u8_runs(r: &mut BitReader<'_>, n: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let q = r.get(8)? as u8;
        let len = run_len(r, n - out.len())?;
        out.resize(out.len() + len, q);
    }
    Ok(out)
}

/// Writes flags as the first flag and the lengths of alternating runs.
pub(crate) fn put_flag_runs(w: &mut BitWriter, flags: impl Iterator<Item = bool>) {
    let mut current: Option<(bool, u64)> = None;
    for f in flags {
        match &mut current {
            Some((c, n)) if *c == f => *n += 1,
            Some((_, n)) => {
                w.residual_u(*n - 1);
                current = Some((f, 1));
            }
            None => {
                w.bit(f);
                current = Some((f, 1));
            }
        }
    }
    if let Some((_, n)) = current {
        w.residual_u(n - 1);
    }
}

/// Reads `n` flags written by [`put_flag_runs`].
pub(crate) fn get_flag_runs(r: &mut BitReader<'_>, n: usize) -> Result<Vec<bool>, CodecError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let mut flag = r.bit()?;
    while out.len() < n {
        let len = run_len(r, n - out.len())?;
        out.resize(out.len() + len, flag);
        flag = !flag;
    }
    Ok(out)
}

fn run_len(r: &mut BitReader<'_>, left: usize) -> Result<usize, CodecError> {
    let len = r.residual_u()?;
    match usize::try_from(len) {
        Ok(l) if l < left => Ok(l + 1),
        _ => Err(CodecError::Corrupt("run length")),
    }
}
