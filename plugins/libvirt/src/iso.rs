//! A minimal ISO 9660 writer for the NoCloud seed volume: one root directory holding a few small
//! files, a primary volume descriptor with ISO level 2 names (`USER_DATA.;1`) and a Joliet
//! supplementary descriptor with the exact names (`user-data`), which is what Linux shows when it
//! mounts the volume. No external tool is needed, and the output is deterministic for a given
//! timestamp.
//!
//! Layout (2048-byte sectors): 0–15 system area, 16 primary descriptor, 17 Joliet descriptor,
//! 18 terminator, then the four path tables, the two root directories and the file data, each
//! file starting on its own sector. Both directory trees point at the same file data.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes per logical sector.
pub const SECTOR: usize = 2048;

/// The first sector after the system area: the primary volume descriptor.
const PVD_SECTOR: usize = 16;

/// Longest file name accepted (the Joliet limit is 64 characters; ISO level 2 allows 30 with
/// the `.` and `;1` that the primary name adds).
const MAX_NAME_LEN: usize = 28;

/// Longest volume label (the field holds 32 bytes, 16 UCS-2 characters for Joliet).
const MAX_LABEL_LEN: usize = 16;

/// One file of the root directory.
#[derive(Debug, Clone, Copy)]
pub struct IsoFile<'a> {
    /// File name as the guest sees it: ASCII letters, digits, `.`, `_` and `-`.
    pub name: &'a str,
    /// Contents.
    pub data: &'a [u8],
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IsoError {
    /// A file name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("ISO file name {0:?} must be 1 to {MAX_NAME_LEN} characters of [A-Za-z0-9._-]")]
    BadName(String),
    /// Two names map to the same primary (upper-case) identifier.
    #[error("ISO file names {0:?} and {1:?} collide")]
    DuplicateName(String, String),
    /// The label is empty, too long or not `[A-Za-z0-9_]`.
    #[error("ISO volume label {0:?} must be 1 to {MAX_LABEL_LEN} characters of [A-Za-z0-9_]")]
    BadLabel(String),
    /// The image would exceed the 32-bit sector count.
    #[error("ISO image too large")]
    TooLarge,
}

/// Builds an image labelled `label` whose root directory holds `files`, stamped with `recorded`.
pub fn build(
    label: &str,
    files: &[IsoFile<'_>],
    recorded: SystemTime,
) -> Result<Vec<u8>, IsoError> {
    if label.is_empty()
        || label.len() > MAX_LABEL_LEN
        || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(IsoError::BadLabel(label.to_owned()));
    }
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        if file.name.is_empty()
            || file.name.len() > MAX_NAME_LEN
            || !file.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(IsoError::BadName(file.name.to_owned()));
        }
        if u32::try_from(file.data.len()).is_err() {
            return Err(IsoError::TooLarge);
        }
        let primary = primary_identifier(file.name);
        if let Some(other) = entries.iter().find(|e: &&Entry<'_>| e.primary == primary) {
            return Err(IsoError::DuplicateName(other.name.to_owned(), file.name.to_owned()));
        }
        let joliet = ucs2(&format!("{};1", file.name));
        entries.push(Entry { name: file.name, data: file.data, primary, joliet, extent: 0 });
    }

    // Fixed sectors: descriptors 16-18, path tables 19-22, then the two root directories.
    let primary_dir_len = directory_len(entries.iter().map(|e| e.primary.len()));
    let joliet_dir_len = directory_len(entries.iter().map(|e| e.joliet.len()));
    let primary_root = 23;
    let joliet_root = primary_root + sectors(primary_dir_len);
    let mut next = joliet_root + sectors(joliet_dir_len);
    for entry in &mut entries {
        if !entry.data.is_empty() {
            entry.extent = next;
            next += sectors(entry.data.len());
        }
    }
    let total = u32::try_from(next).map_err(|_| IsoError::TooLarge)?;
    let stamp = Stamp::from(recorded);

    let mut image = vec![0u8; next * SECTOR];
    let trees = [
        Tree { kind: Kind::Primary, root: primary_root, dir_len: primary_dir_len, path_table: 19 },
        Tree { kind: Kind::Joliet, root: joliet_root, dir_len: joliet_dir_len, path_table: 21 },
    ];
    for (i, tree) in trees.iter().enumerate() {
        let descriptor = volume_descriptor(tree, label, total, &stamp);
        put(&mut image, (PVD_SECTOR + i) * SECTOR, &descriptor);
        for (offset, big_endian) in [(0, false), (1, true)] {
            let table = path_table(tree.root, big_endian);
            put(&mut image, (tree.path_table + offset) * SECTOR, &table);
        }
        let mut sorted: Vec<&Entry<'_>> = entries.iter().collect();
        sorted.sort_by(|a, b| tree.kind.identifier(a).cmp(tree.kind.identifier(b)));
        let dir = directory(tree, &sorted, &stamp);
        put(&mut image, tree.root * SECTOR, &dir);
    }
    let terminator = (PVD_SECTOR + 2) * SECTOR;
    image[terminator] = 255;
    put(&mut image, terminator + 1, b"CD001\x01");
    for entry in &entries {
        put(&mut image, entry.extent * SECTOR, entry.data);
    }
    Ok(image)
}

struct Entry<'a> {
    name: &'a str,
    data: &'a [u8],
    /// `USER_DATA.;1`: ISO level 2 d-characters, upper case.
    primary: Vec<u8>,
    /// `user-data;1` in UCS-2 big endian.
    joliet: Vec<u8>,
    /// First sector of the data (0 for an empty file).
    extent: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primary,
    Joliet,
}

impl Kind {
    fn identifier<'e>(self, entry: &'e Entry<'_>) -> &'e [u8] {
        match self {
            Kind::Primary => &entry.primary,
            Kind::Joliet => &entry.joliet,
        }
    }

    /// Text fields: space-padded ASCII in the primary descriptor, UCS-2 in the Joliet one.
    fn text(self, text: &str, len: usize) -> Vec<u8> {
        let mut out = match self {
            Kind::Primary => text.as_bytes().to_vec(),
            Kind::Joliet => ucs2(text),
        };
        while out.len() < len {
            out.extend_from_slice(match self {
                Kind::Primary => b" ",
                Kind::Joliet => b"\0 ",
            });
        }
        out.truncate(len);
        out
    }
}

struct Tree {
    kind: Kind,
    root: usize,
    dir_len: usize,
    path_table: usize,
}

fn primary_identifier(name: &str) -> Vec<u8> {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            u @ ('A'..='Z' | '0'..='9' | '.') => u,
            _ => '_',
        })
        .collect();
    // One dot separates name and extension; any other becomes `_`.
    let (base, ext) = match mapped.rsplit_once('.') {
        Some((base, ext)) => (base.replace('.', "_"), ext.to_owned()),
        None => (mapped, String::new()),
    };
    format!("{base}.{ext};1").into_bytes()
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn sectors(bytes: usize) -> usize {
    bytes.div_ceil(SECTOR).max(1)
}

fn record_len(identifier_len: usize) -> usize {
    let len = 33 + identifier_len;
    len + len % 2
}

/// Bytes a directory takes: `.` and `..`, then one record per file, no record crossing a sector.
fn directory_len(identifiers: impl Iterator<Item = usize>) -> usize {
    let mut used = 2 * record_len(1);
    for len in identifiers {
        let len = record_len(len);
        if used % SECTOR + len > SECTOR {
            used = used.div_ceil(SECTOR) * SECTOR;
        }
        used += len;
    }
    sectors(used) * SECTOR
}

fn directory(tree: &Tree, entries: &[&Entry<'_>], stamp: &Stamp) -> Vec<u8> {
    let mut dir = Vec::with_capacity(tree.dir_len);
    let this = record(tree.root, tree.dir_len, true, &[0], stamp);
    let parent = record(tree.root, tree.dir_len, true, &[1], stamp);
    dir.extend_from_slice(&this);
    dir.extend_from_slice(&parent);
    for entry in entries {
        let rec = record(entry.extent, entry.data.len(), false, tree.kind.identifier(entry), stamp);
        if dir.len() % SECTOR + rec.len() > SECTOR {
            dir.resize(dir.len().div_ceil(SECTOR) * SECTOR, 0);
        }
        dir.extend_from_slice(&rec);
    }
    dir.resize(tree.dir_len, 0);
    dir
}

/// One directory record (ECMA-119 §9.1).
fn record(extent: usize, size: usize, is_dir: bool, identifier: &[u8], stamp: &Stamp) -> Vec<u8> {
    let len = record_len(identifier.len());
    let mut rec = vec![0u8; len];
    rec[0] = len as u8;
    rec[2..10].copy_from_slice(&both32(extent as u32));
    rec[10..18].copy_from_slice(&both32(size as u32));
    rec[18..25].copy_from_slice(&stamp.record());
    rec[25] = if is_dir { 2 } else { 0 };
    rec[28..32].copy_from_slice(&both16(1));
    rec[32] = identifier.len() as u8;
    rec[33..33 + identifier.len()].copy_from_slice(identifier);
    rec
}

/// The path table of a tree with only a root directory (ECMA-119 §9.4).
fn path_table(root: usize, big_endian: bool) -> [u8; 10] {
    let mut table = [0u8; 10];
    table[0] = 1;
    let location = root as u32;
    table[2..6].copy_from_slice(&if big_endian {
        location.to_be_bytes()
    } else {
        location.to_le_bytes()
    });
    table[6..8].copy_from_slice(&if big_endian { 1u16.to_be_bytes() } else { 1u16.to_le_bytes() });
    table
}

/// The primary (type 1) or Joliet supplementary (type 2) volume descriptor (ECMA-119 §8.4).
fn volume_descriptor(tree: &Tree, label: &str, total: u32, stamp: &Stamp) -> Vec<u8> {
    let kind = tree.kind;
    let mut d = vec![0u8; SECTOR];
    d[0] = if kind == Kind::Primary { 1 } else { 2 };
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d[8..40].copy_from_slice(&kind.text("LINUX", 32));
    d[40..72].copy_from_slice(&kind.text(label, 32));
    d[80..88].copy_from_slice(&both32(total));
    if kind == Kind::Joliet {
        // Escape sequence for UCS-2 level 3.
        d[88..91].copy_from_slice(b"%/E");
    }
    d[120..124].copy_from_slice(&both16(1));
    d[124..128].copy_from_slice(&both16(1));
    d[128..132].copy_from_slice(&both16(SECTOR as u16));
    d[132..140].copy_from_slice(&both32(10));
    d[140..144].copy_from_slice(&(tree.path_table as u32).to_le_bytes());
    d[148..152].copy_from_slice(&(tree.path_table as u32 + 1).to_be_bytes());
    d[156..190].copy_from_slice(&record(tree.root, tree.dir_len, true, &[0], stamp));
    for (start, len, text) in [
        (190, 128, ""),
        (318, 128, ""),
        (446, 128, ""),
        (574, 128, "CAA-PROVIDER-LIBVIRT"),
        (702, 37, ""),
        (739, 37, ""),
        (776, 37, ""),
    ] {
        d[start..start + len].copy_from_slice(&kind.text(text, len));
    }
    d[813..830].copy_from_slice(&stamp.descriptor());
    d[830..847].copy_from_slice(&stamp.descriptor());
    d[847..864].copy_from_slice(b"0000000000000000\0");
    d[864..881].copy_from_slice(b"0000000000000000\0");
    d[881] = 1;
    d
}

fn both16(v: u16) -> [u8; 4] {
    let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
    [le[0], le[1], be[0], be[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
    [le[0], le[1], le[2], le[3], be[0], be[1], be[2], be[3]]
}

fn put(image: &mut [u8], at: usize, bytes: &[u8]) {
    image[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A UTC time split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl From<SystemTime> for Stamp {
    fn from(time: SystemTime) -> Stamp {
        let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Stamp {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

impl Stamp {
    /// The 7-byte form of directory records: years since 1900, month, day, h, m, s, UTC offset.
    fn record(&self) -> [u8; 7] {
        let year = (self.year - 1900).clamp(0, 255) as u8;
        [year, self.month, self.day, self.hour, self.minute, self.second, 0]
    }

    /// The 17-byte form of volume descriptors: `YYYYMMDDHHMMSScc` and a UTC offset byte.
    fn descriptor(&self) -> [u8; 17] {
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        );
        let mut out = [0u8; 17];
        out[..16].copy_from_slice(text.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests;
