//! Array layouts: Fortran (column-major) and C (row-major) order of the same
//! n-dimensional array. The C, C++ and Fortran bindings store tensors row-major; a
//! Fortran array in its natural layout is reordered once on the way in and once on the
//! way out, by a cache-tiled transpose (`benches/benches/layout.rs` measures it).

/// Reorder column-major elements (Fortran order, dims `dims`) into row-major order for
/// the same dims, or back (`to_row` false), for elements of `esz` bytes, from `src`
/// into `out` (both the same length, the product of `dims` times `esz`; anything else
/// leaves `out` untouched).
///
/// Reversing the axes is, for each index of the middle axes, a 2-D transpose between
/// the first and the last axis; that transpose runs in cache-sized tiles, with the
/// element moved as a fixed-size array for the common element sizes.
pub fn transpose_into(src: &[u8], out: &mut [u8], dims: &[usize], esz: usize, to_row: bool) {
    let n = dims
        .iter()
        .try_fold(esz, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    if n == 0 || src.len() != n || out.len() != n {
        return;
    }
    fn fixed<const E: usize>(s: &[u8], o: &mut [u8], dims: &[usize], to_row: bool) {
        // E is a constant here, so each copy compiles to one load and store.
        let mut mv = |to: usize, from: usize| {
            o[to * E..(to + 1) * E].copy_from_slice(&s[from * E..(from + 1) * E])
        };
        if to_row {
            for_each_pair(dims, &mut mv);
        } else {
            for_each_pair(dims, |r, f| mv(f, r));
        }
    }
    match esz {
        1 => fixed::<1>(src, out, dims, to_row),
        2 => fixed::<2>(src, out, dims, to_row),
        4 => fixed::<4>(src, out, dims, to_row),
        8 => fixed::<8>(src, out, dims, to_row),
        16 => fixed::<16>(src, out, dims, to_row),
        _ => for_each_pair(dims, |r, f| {
            let (from, to) = if to_row { (f, r) } else { (r, f) };
            out[to * esz..(to + 1) * esz].copy_from_slice(&src[from * esz..(from + 1) * esz]);
        }),
    }
}

/// [`transpose_into`] into a new buffer.
pub fn transpose(src: &[u8], dims: &[usize], esz: usize, to_row: bool) -> Vec<u8> {
    let mut out = vec![0u8; src.len()];
    transpose_into(src, &mut out, dims, esz, to_row);
    out
}

/// Call `visit(r, f)` once for every element of an array of dims `dims`, where `r` is
/// its row-major position and `f` its column-major one, in an order that keeps both
/// reads and writes within cache-sized tiles.
fn for_each_pair(dims: &[usize], mut visit: impl FnMut(usize, usize)) {
    const TILE: usize = 16;
    let nd = dims.len();
    if nd <= 1 {
        (0..dims.first().copied().unwrap_or(1)).for_each(|i| visit(i, i));
        return;
    }
    let (first, last) = (dims[0], dims[nd - 1]);
    // Column-major stride of the last axis; row-major stride of the first.
    let f_last: usize = dims[..nd - 1].iter().product();
    let r_first: usize = dims[1..].iter().product();
    let middle = &dims[1..nd - 1];
    let mut idx = vec![0usize; middle.len()];
    loop {
        // Offsets of this middle index: column-major strides grow from axis 1 (after
        // the first axis), row-major strides grow from axis nd-2 (before the last).
        let (mut base_f, mut base_r) = (0usize, 0usize);
        let mut fs = first;
        for (i, d) in idx.iter().zip(middle) {
            base_f += i * fs;
            fs *= d;
        }
        let mut rs = last;
        for (i, d) in idx.iter().zip(middle).rev() {
            base_r += i * rs;
            rs *= d;
        }
        for i0 in (0..first).step_by(TILE) {
            for il in (0..last).step_by(TILE) {
                for b in il..(il + TILE).min(last) {
                    for a in i0..(i0 + TILE).min(first) {
                        visit(base_r + a * r_first + b, base_f + a + b * f_last);
                    }
                }
            }
        }
        // Next middle index, row-major (last middle axis fastest).
        let mut k = middle.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < middle[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn transpose_round_trips_and_matches_fortran_indexing() {
        // a(2,3) in Fortran order: a(i,j) = 10*i + j.
        let dims = [2usize, 3];
        let col: Vec<u8> = [11u8, 21, 12, 22, 13, 23].to_vec();
        let row = transpose(&col, &dims, 1, true);
        assert_eq!(row, vec![11, 12, 13, 21, 22, 23]); // t[i-1][j-1] == a(i,j)
        assert_eq!(transpose(&row, &dims, 1, false), col);
        let dims3 = [2usize, 3, 4];
        let src: Vec<u8> = (0..24u32).flat_map(|v| (v as u16).to_le_bytes()).collect();
        assert_eq!(
            transpose(&transpose(&src, &dims3, 2, true), &dims3, 2, false),
            src
        );
    }

    /// Element by element, the definition: walk row-major order, compute each
    /// element's column-major position.
    fn reference(src: &[u8], dims: &[usize], esz: usize, to_row: bool) -> Vec<u8> {
        let n: usize = dims.iter().product();
        let mut out = vec![0u8; src.len()];
        let mut fstride = vec![1usize; dims.len()];
        for k in 1..dims.len() {
            fstride[k] = fstride[k - 1] * dims[k - 1];
        }
        let mut idx = vec![0usize; dims.len()];
        for r in 0..n {
            let f: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
            let (from, to) = if to_row { (f, r) } else { (r, f) };
            out[to * esz..(to + 1) * esz].copy_from_slice(&src[from * esz..(from + 1) * esz]);
            for k in (0..dims.len()).rev() {
                idx[k] += 1;
                if idx[k] < dims[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        out
    }

    #[test]
    fn tiled_transpose_equals_the_definition_for_every_shape_and_size() {
        let shapes: [&[usize]; 9] = [
            &[7],
            &[1, 1],
            &[33, 65],
            &[64, 32],
            &[5, 1, 70],
            &[3, 4, 5, 6],
            &[2, 3, 2, 3, 2, 3, 2],
            &[40, 3, 41],
            &[1, 100, 1],
        ];
        for dims in shapes {
            for esz in [1usize, 2, 3, 4, 8, 16] {
                let n: usize = dims.iter().product();
                let src: Vec<u8> = (0..n * esz).map(|i| (i * 7 + i / 251) as u8).collect();
                for to_row in [true, false] {
                    assert_eq!(
                        transpose(&src, dims, esz, to_row),
                        reference(&src, dims, esz, to_row),
                        "dims {dims:?} esz {esz} to_row {to_row}"
                    );
                }
            }
        }
    }
}
