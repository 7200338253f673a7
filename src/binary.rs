//! The little-endian binary layout checkpoints are written in: counts and integers as u64, values
//! as f32 or f64 arrays (a u64 count, then the values), strings as a u64 length and UTF-8 bytes,
//! optional parts behind a presence byte. [`Writer`] writes it; [`Reader`] reads it back and
//! refuses truncated or corrupt input with a message naming the byte.

/// Appends values in the layout.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }

    /// Raw bytes, without a count (their length is known to the reader).
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    pub fn f32s(&mut self, xs: &[f32]) {
        self.u64(xs.len() as u64);
        self.0.reserve(4 * xs.len());
        xs.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }

    pub fn f64s(&mut self, xs: &[f64]) {
        self.u64(xs.len() as u64);
        xs.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }

    pub fn usizes(&mut self, xs: &[usize]) {
        self.u64(xs.len() as u64);
        xs.iter().for_each(|&x| self.u64(x as u64));
    }

    pub fn opt<T>(&mut self, x: Option<&T>, f: impl FnOnce(&mut Self, &T)) {
        match x {
            Some(x) => {
                self.0.push(1);
                f(self, x);
            }
            None => self.0.push(0),
        }
    }
}

/// What reading returns: the value, or what is wrong with the input.
pub type Parsed<T> = std::result::Result<T, String>;

/// Reads values in the layout from `bytes`, starting at `at`.
#[derive(Debug)]
pub struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Parsed<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub fn u64(&mut self) -> Parsed<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A count of items of `size` bytes each, checked against what is left (a corrupt count
    /// must not allocate without bound).
    pub fn count(&mut self, size: usize) -> Parsed<usize> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(size as u64) > left {
            return Err(format!(
                "a count of {n} at byte {} exceeds the file",
                self.at - 8
            ));
        }
        Ok(n as usize)
    }

    pub fn str(&mut self) -> Parsed<String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
    }

    pub fn f32s(&mut self) -> Parsed<Vec<f32>> {
        self.values(f32::from_le_bytes)
    }

    pub fn f64s(&mut self) -> Parsed<Vec<f64>> {
        self.values(f64::from_le_bytes)
    }

    /// A count, then that many values of `N` bytes each, read by `from_le`.
    fn values<T, const N: usize>(&mut self, from_le: fn([u8; N]) -> T) -> Parsed<Vec<T>> {
        let n = self.count(N)?;
        Ok(self
            .take(N * n)?
            .chunks_exact(N)
            .map(|c| from_le(c.try_into().expect("N bytes")))
            .collect())
    }

    pub fn usizes(&mut self) -> Parsed<Vec<usize>> {
        let n = self.count(8)?;
        (0..n).map(|_| Ok(self.u64()? as usize)).collect()
    }

    pub fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<Option<T>> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => f(self).map(Some),
            b => Err(format!("bad presence byte {b} at byte {}", self.at - 1)),
        }
    }
}
