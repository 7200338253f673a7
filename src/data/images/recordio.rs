//! insightface's packed training set: MXNet RecordIO (`train.rec`) with its index (`train.idx`),
//! as read by `recognition/arcface_torch/dataset.py` (`MXFaceDataset`).
//!
//! A record on disk is one or more frames: a `u32` magic 0xced7230a, a `u32` whose upper 3 bits
//! are the continuation flag (0 whole, 1 first, 2 middle, 3 last part) and lower 29 bits the
//! length, the data, then zero padding to 4 bytes. MXNet's writer splits a record wherever its
//! data holds the magic word at a 4-byte-aligned position and drops that word, so the reader puts
//! the magic back between parts. The record's data opens with an image header (`IRHeader`:
//! flag `u32`, label `f32`, id `u64`, id2 `u64`); a flag > 0 means `flag` `f32` labels follow the
//! header and the scalar label is unused. The rest is the encoded image (JPEG or PNG).
//!
//! The index has one text line `key<TAB>offset` per record. If record 0 carries labels, it is the
//! pack's header: label = (a, b), images are records 1..a and records a..b describe the
//! identities in order, each with label = (start, end), the range of that identity's image keys.
//! Without it, every indexed record is an image and its (first) label is its identity.
//! An optional `property` file beside them reads `num_classes,height,width`.
//!
//! Records are read one at a time by their offset; the `.rec` is never loaded whole.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::data::images::{check_index, Channels, Decoder, FaceImages};
use crate::error::{Error, Result};

/// The RecordIO frame magic.
pub const MAGIC: u32 = 0xced7_230a;
/// Bytes of the image record header (`IRHeader`).
pub const IR_HEADER_LEN: usize = 24;

/// The image record header.
#[derive(Debug, Clone, PartialEq)]
pub struct IrHeader {
    pub flag: u32,
    /// The labels: `flag` values when flag > 0, else the one scalar label.
    pub labels: Vec<f32>,
    pub id: u64,
    pub id2: u64,
}

/// Splits a record into its header and payload; `None` when it is too short for what it declares.
pub fn unpack(record: &[u8]) -> Option<(IrHeader, &[u8])> {
    if record.len() < IR_HEADER_LEN {
        return None;
    }
    let u32_at = |o: usize| u32::from_le_bytes(record[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(record[o..o + 8].try_into().unwrap());
    let flag = u32_at(0);
    let scalar = f32::from_bits(u32_at(4));
    let (id, id2) = (u64_at(8), u64_at(16));
    let rest = &record[IR_HEADER_LEN..];
    if flag == 0 {
        return Some((
            IrHeader {
                flag,
                labels: vec![scalar],
                id,
                id2,
            },
            rest,
        ));
    }
    let n = flag as usize * 4;
    if rest.len() < n {
        return None;
    }
    let labels = rest[..n]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Some((
        IrHeader {
            flag,
            labels,
            id,
            id2,
        },
        &rest[n..],
    ))
}

/// A RecordIO face pack.
#[derive(Debug)]
pub struct RecordIo {
    rec_path: PathBuf,
    idx_path: PathBuf,
    rec: File,
    rec_len: u64,
    offsets: HashMap<u64, u64>,
    /// Image keys per identity.
    identities: Vec<Vec<u64>>,
    names: Vec<String>,
    decoder: Decoder,
}

impl RecordIo {
    /// Opens `dir/train.rec` with `dir/train.idx` (and `dir/property` if present).
    pub fn open_dir(dir: impl AsRef<Path>, channels: Channels) -> Result<Self> {
        Self::open(dir.as_ref().join("train.rec"), channels)
    }

    /// Opens the pack `rec` with the index of the same name ending `.idx`, reads the identity
    /// layout and checks that every image it names has an index entry.
    pub fn open(rec: impl AsRef<Path>, channels: Channels) -> Result<Self> {
        let rec_path = rec.as_ref().to_path_buf();
        let idx_path = rec_path.with_extension("idx");
        let file = File::open(&rec_path).map_err(|e| Error::io(&rec_path, e))?;
        let rec_len = file.metadata().map_err(|e| Error::io(&rec_path, e))?.len();
        let offsets = read_index(&idx_path)?;
        let mut pack = RecordIo {
            rec_path,
            idx_path,
            rec: file,
            rec_len,
            offsets,
            identities: Vec::new(),
            names: Vec::new(),
            decoder: Decoder::new(channels),
        };
        pack.read_layout()?;
        pack.check_property()?;
        Ok(pack)
    }

    /// The `.rec` file.
    pub fn rec_path(&self) -> &Path {
        &self.rec_path
    }

    /// The record key of one image.
    pub fn key(&self, identity: usize, instance: usize) -> u64 {
        self.identities[identity][instance]
    }

    /// The whole data of record `key`, its parts reassembled.
    pub fn read_record(&self, key: u64) -> Result<Vec<u8>> {
        let &start = self.offsets.get(&key).ok_or_else(|| {
            Error::dataset(
                &self.idx_path,
                format!(
                    "record {key} has no index entry; the index does not belong to {} — regenerate it",
                    self.rec_path.display()
                ),
            )
        })?;
        let mut out = Vec::new();
        let mut pos = start;
        let mut part = 0;
        loop {
            let mut head = [0u8; 8];
            self.read_exact_at(&mut head, pos, key)?;
            let magic = u32::from_le_bytes(head[..4].try_into().unwrap());
            if magic != MAGIC {
                return Err(Error::dataset(
                    &self.rec_path,
                    format!(
                        "record {key}: no RecordIO magic at byte {pos} (found {magic:#010x}); \
                         the index offsets do not match this file — regenerate the index"
                    ),
                ));
            }
            let word = u32::from_le_bytes(head[4..].try_into().unwrap());
            let (cflag, len) = (word >> 29, (word & ((1 << 29) - 1)) as usize);
            let expected = if part == 0 { [0, 1] } else { [2, 3] };
            if !expected.contains(&cflag) {
                return Err(Error::dataset(
                    &self.rec_path,
                    format!("record {key}: part {part} at byte {pos} has continuation flag {cflag}, expected {expected:?}; the file is corrupt"),
                ));
            }
            if part > 0 {
                out.extend_from_slice(&MAGIC.to_le_bytes());
            }
            let at = out.len();
            out.resize(at + len, 0);
            self.read_exact_at(&mut out[at..], pos + 8, key)?;
            pos += 8 + len.next_multiple_of(4) as u64;
            part += 1;
            if cflag == 0 || cflag == 3 {
                return Ok(out);
            }
        }
    }

    /// The header of record `key` and its payload.
    pub fn read_image_record(&self, key: u64) -> Result<(IrHeader, Vec<u8>)> {
        let record = self.read_record(key)?;
        let (header, payload) = unpack(&record).ok_or_else(|| {
            Error::dataset(
                &self.rec_path,
                format!(
                    "record {key}: {} bytes is too short for its image header; the file is corrupt",
                    record.len()
                ),
            )
        })?;
        Ok((header, payload.to_vec()))
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64, key: u64) -> Result<()> {
        if pos + buf.len() as u64 > self.rec_len {
            return Err(Error::dataset(
                &self.rec_path,
                format!(
                    "truncated: record {key} needs bytes up to {} but the file ends at {}; \
                     the copy is incomplete — fetch it again",
                    pos + buf.len() as u64,
                    self.rec_len
                ),
            ));
        }
        read_at(&self.rec, buf, pos).map_err(|e| Error::io(&self.rec_path, e))
    }

    /// Fills `identities` and `names` from the header record, or by grouping labels.
    fn read_layout(&mut self) -> Result<()> {
        let header0 = if self.offsets.contains_key(&0) {
            Some(self.read_image_record(0)?.0)
        } else {
            None
        };
        match header0 {
            Some(h) if h.flag > 0 => {
                if h.labels.len() < 2 {
                    return Err(Error::dataset(
                        &self.rec_path,
                        "record 0 has one label, expected (first identity record, end of identity records)",
                    ));
                }
                let (a, b) = (
                    label_key(&h, 0, 0, &self.rec_path)?,
                    label_key(&h, 0, 1, &self.rec_path)?,
                );
                for id_key in a..b {
                    let (ih, _) = self.read_image_record(id_key)?;
                    let (start, end) = (
                        label_key(&ih, id_key, 0, &self.rec_path)?,
                        label_key(&ih, id_key, 1, &self.rec_path)?,
                    );
                    if start >= end {
                        return Err(Error::dataset(
                            &self.rec_path,
                            format!("identity record {id_key} has the empty image range [{start}, {end})"),
                        ));
                    }
                    let keys: Vec<u64> = (start..end).collect();
                    if let Some(k) = keys.iter().find(|k| !self.offsets.contains_key(k)) {
                        return Err(Error::dataset(
                            &self.idx_path,
                            format!(
                                "record {k} (an image of identity record {id_key}) has no index entry; \
                                 the index does not belong to {} — regenerate it",
                                self.rec_path.display()
                            ),
                        ));
                    }
                    self.names.push((id_key - a).to_string());
                    self.identities.push(keys);
                }
            }
            _ => {
                let mut keys: Vec<u64> = self.offsets.keys().copied().collect();
                keys.sort_unstable();
                let mut by_label: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
                for key in keys {
                    let (h, _) = self.read_image_record(key)?;
                    by_label
                        .entry(label_key(&h, key, 0, &self.rec_path)? as i64)
                        .or_default()
                        .push(key);
                }
                for (label, keys) in by_label {
                    self.names.push(label.to_string());
                    self.identities.push(keys);
                }
            }
        }
        if self.identities.is_empty() {
            return Err(Error::dataset(&self.rec_path, "the pack holds no identity"));
        }
        Ok(())
    }

    /// Compares `property` (`num_classes,height,width`), when present, with the layout read.
    fn check_property(&self) -> Result<()> {
        let path = self.rec_path.with_file_name("property");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let fields: Vec<&str> = text.trim().split(',').map(str::trim).collect();
        let classes = fields.first().and_then(|f| f.parse::<usize>().ok());
        let Some(classes) = classes.filter(|_| fields.len() == 3) else {
            return Err(Error::dataset(
                &path,
                format!(
                    "expected `num_classes,height,width`, found `{}`",
                    text.trim()
                ),
            ));
        };
        if classes != self.identities.len() {
            return Err(Error::dataset(
                &path,
                format!(
                    "says {classes} identities but {} holds {}; the files come from different packs",
                    self.rec_path.display(),
                    self.identities.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Label `i` of record `key` as a record key: a non-negative whole number.
fn label_key(h: &IrHeader, key: u64, i: usize, rec: &Path) -> Result<u64> {
    match h.labels.get(i) {
        Some(&v) if v >= 0.0 && v.fract() == 0.0 => Ok(v as u64),
        other => Err(Error::dataset(
            rec,
            format!("record {key}: label {i} is {other:?}, expected a non-negative whole number"),
        )),
    }
}

/// Parses `key<TAB>offset` lines.
fn read_index(path: &Path) -> Result<HashMap<u64, u64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut offsets = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut it = line.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(key)), Some(Ok(offset)), None) => {
                offsets.insert(key, offset);
            }
            _ => {
                return Err(Error::dataset(
                    path,
                    format!("line {}: expected `key<TAB>offset`, found `{line}`", n + 1),
                ))
            }
        }
    }
    Ok(offsets)
}

/// Reads `buf.len()` bytes at `pos` without moving a shared cursor, so threads may share the file.
#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, pos)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut pos: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, pos)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
        }
    }
    Ok(())
}

impl FaceImages for RecordIo {
    fn num_identities(&self) -> usize {
        self.identities.len()
    }

    fn num_instances(&self, identity: usize) -> usize {
        self.identities[identity].len()
    }

    fn identity_name(&self, identity: usize) -> &str {
        &self.names[identity]
    }

    fn channels(&self) -> Channels {
        self.decoder.channels()
    }

    fn load(&self, identity: usize, instance: usize, flip: bool, out: &mut [f32]) -> Result<()> {
        check_index(self, &self.rec_path, identity, instance)?;
        let key = self.identities[identity][instance];
        let (_, payload) = self.read_image_record(key)?;
        self.decoder.decode(
            &payload,
            &self.rec_path,
            &format!("record {key}"),
            flip,
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    //! Against the packs written by `tests/data/recordio/make_fixtures.py`, an independent writer.
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/recordio")
            .join(name)
    }

    /// A copy of fixture `name` in a temporary folder, `edit`ed.
    fn edited(name: &str, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(fixture(name)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        edit(dir.path());
        dir
    }

    /// Value of pixel (0, 0) of an image with pixel (x, y) = v + x, normalised.
    fn px(v: u8) -> f32 {
        (v as f32 / 255.0 - 0.5) / 0.5
    }

    #[test]
    fn reads_identity_ranges_from_the_header_record() {
        let pack = RecordIo::open_dir(fixture("pack"), Channels::Grey).unwrap();
        assert_eq!(pack.num_identities(), 3);
        assert_eq!(
            (0..3).map(|i| pack.num_instances(i)).collect::<Vec<_>>(),
            [2, 1, 3]
        );
        assert_eq!(pack.key(2, 1), 5);
        let mut out = vec![0.0; Channels::Grey.sample_len()];
        for (id, inst, key) in [(0, 0, 1u8), (0, 1, 2), (1, 0, 3), (2, 2, 6)] {
            pack.load(id, inst, false, &mut out).unwrap();
            assert!((out[0] - px(10 * key)).abs() < 1e-6, "record {key}");
            assert!((out[1] - px(10 * key + 1)).abs() < 1e-6);
            let (h, _) = pack.read_image_record(key as u64).unwrap();
            assert_eq!((h.flag, h.labels, h.id), (0, vec![id as f32], key as u64));
        }
        pack.load(2, 0, true, &mut out).unwrap();
        assert!((out[0] - px(40 + 111)).abs() < 1e-6, "flipped");
    }

    #[test]
    fn reassembles_a_record_split_by_the_continuation_flag() {
        let pack = RecordIo::open_dir(fixture("pack"), Channels::Grey).unwrap();
        let record = pack.read_record(3).unwrap();
        // The magic words the writer dropped are back, at 4-byte-aligned offsets.
        let hits: Vec<usize> = (0..record.len() / 4)
            .filter(|i| record[4 * i..4 * i + 4] == MAGIC.to_le_bytes())
            .collect();
        assert_eq!(hits.len(), 2, "{hits:?}");
        let (h, payload) = unpack(&record).unwrap();
        assert_eq!(h.labels, [1.0]);
        assert!(payload.starts_with(b"\x89PNG"));
        let raw = std::fs::read(fixture("pack/train.rec")).unwrap();
        let flags: Vec<u32> = (0..raw.len() / 4)
            .filter(|&i| raw[4 * i..4 * i + 4] == MAGIC.to_le_bytes())
            .map(|i| u32::from_le_bytes(raw[4 * i + 4..4 * i + 8].try_into().unwrap()) >> 29)
            .collect();
        assert!(flags.windows(3).any(|w| w == [1, 2, 3]), "{flags:?}");
    }

    #[test]
    fn groups_by_label_without_a_header_record() {
        let pack = RecordIo::open_dir(fixture("plain"), Channels::Rgb).unwrap();
        assert_eq!(pack.num_identities(), 2);
        assert_eq!((pack.identity_name(0), pack.identity_name(1)), ("5", "7"));
        assert_eq!((pack.key(0, 0), pack.key(0, 1)), (1, 3));
        assert_eq!((pack.key(1, 0), pack.key(1, 1)), (0, 2));
        let (h, _) = pack.read_image_record(2).unwrap();
        assert_eq!((h.flag, h.labels), (2, vec![7.0, 0.5]));
        let mut out = vec![0.0; Channels::Rgb.sample_len()];
        pack.load(1, 1, false, &mut out).unwrap();
        assert!((out[0] - px(120)).abs() < 1e-6);
    }

    #[test]
    fn missing_index_entry_is_an_error_naming_the_index() {
        let dir = edited("pack", |d| {
            let idx = std::fs::read_to_string(d.join("train.idx")).unwrap();
            let kept: String = idx
                .lines()
                .filter(|l| !l.starts_with("5\t"))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(d.join("train.idx"), kept).unwrap();
        });
        let err = RecordIo::open_dir(dir.path(), Channels::Grey)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.idx: record 5 (an image of identity record 9) has no index entry"),
            "{err}"
        );
    }

    #[test]
    fn truncated_rec_is_an_error_and_writes_nothing() {
        let dir = edited("pack", |d| {
            let rec = std::fs::read(d.join("train.rec")).unwrap();
            // Cut inside image record 6 (offset 1536); the identity records after it are kept
            // readable by pointing the index at copies placed before the cut.
            std::fs::write(d.join("train.rec"), &rec[..1600]).unwrap();
        });
        let err = RecordIo::open_dir(dir.path(), Channels::Grey)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.rec: truncated: record 7 needs bytes"),
            "{err}"
        );

        // Truncated inside an image record only: opening works, loading that image fails.
        let dir = edited("pack", |d| {
            let rec = std::fs::read(d.join("train.rec")).unwrap();
            let idx = std::fs::read_to_string(d.join("train.idx")).unwrap();
            // Move the identity records (the last 120 bytes) before record 6, then cut.
            let (images, ids) = rec.split_at(1828);
            let mut out = images[..1536].to_vec();
            out.extend_from_slice(ids);
            out.extend_from_slice(&images[1536..1600]);
            std::fs::write(d.join("train.rec"), out).unwrap();
            let idx: String = idx
                .lines()
                .map(|l| {
                    let (k, o) = l.split_once('\t').unwrap();
                    let (k, o): (u64, u64) = (k.parse().unwrap(), o.parse().unwrap());
                    let o = match k {
                        6 => 1536 + 120,
                        7..=9 => o - 1828 + 1536,
                        _ => o,
                    };
                    format!("{k}\t{o}\n")
                })
                .collect();
            std::fs::write(d.join("train.idx"), idx).unwrap();
        });
        let pack = RecordIo::open_dir(dir.path(), Channels::Grey).unwrap();
        let mut out = vec![0.25; Channels::Grey.sample_len()];
        pack.load(2, 1, false, &mut out).unwrap();
        let err = pack.load(2, 2, false, &mut out).unwrap_err().to_string();
        assert!(
            err.contains("train.rec: truncated: record 6 needs bytes"),
            "{err}"
        );
        assert!(
            (out[0] - px(50)).abs() < 1e-6,
            "untouched by the failed load"
        );
    }

    #[test]
    fn wrong_offsets_and_property_are_named() {
        let dir = edited("pack", |d| {
            std::fs::write(d.join("train.idx"), "0\t0\n1\t44\n").unwrap();
            std::fs::write(d.join("property"), "3,112,112").unwrap();
        });
        let err = RecordIo::open_dir(dir.path(), Channels::Grey)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no index entry"), "{err}");
        let dir = edited("pack", |d| {
            let idx = std::fs::read_to_string(d.join("train.idx")).unwrap();
            std::fs::write(d.join("train.idx"), idx.replace("2\t332", "2\t336")).unwrap();
        });
        let pack = RecordIo::open_dir(dir.path(), Channels::Grey).unwrap();
        let err = pack.read_record(2).unwrap_err().to_string();
        assert!(
            err.contains("record 2: no RecordIO magic at byte 336"),
            "{err}"
        );
        let dir = edited("pack", |d| {
            std::fs::write(d.join("property"), "4,112,112\n").unwrap()
        });
        let err = RecordIo::open_dir(dir.path(), Channels::Grey)
            .unwrap_err()
            .to_string();
        assert!(err.contains("property: says 4 identities"), "{err}");
    }
}
