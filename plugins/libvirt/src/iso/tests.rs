//! The ISO writer checked by reading its bytes back with an independent little parser (volume
//! descriptors, path tables, directory records, file extents), and by libblkid, the prober
//! cloud-init's `LABEL=cidata` lookup goes through.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().unwrap())
}

/// Checks that a both-endian field agrees with itself and returns it.
fn both32_field(b: &[u8]) -> u32 {
    let le = le32(b);
    assert_eq!(u32::from_be_bytes(b[4..8].try_into().unwrap()), le, "both-endian mismatch");
    le
}

/// One parsed directory record.
#[derive(Debug)]
struct Rec {
    extent: usize,
    size: usize,
    is_dir: bool,
    id: Vec<u8>,
    date: [u8; 7],
}

fn parse_record(b: &[u8]) -> Rec {
    let len = b[0] as usize;
    let id_len = b[32] as usize;
    assert!(33 + id_len <= len, "record length {len} too short for its identifier");
    assert_eq!(len % 2, 0, "records have even length");
    assert_eq!(&b[28..32], &[1, 0, 0, 1], "volume sequence number");
    Rec {
        extent: both32_field(&b[2..10]) as usize,
        size: both32_field(&b[10..18]) as usize,
        is_dir: b[25] & 2 != 0,
        id: b[33..33 + id_len].to_vec(),
        date: b[18..25].try_into().unwrap(),
    }
}

/// All records of the directory at `root`, `.` and `..` included, in order.
fn read_dir(image: &[u8], root: &Rec) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut pos = root.extent * SECTOR;
    let end = pos + root.size;
    while pos < end {
        if image[pos] == 0 {
            // Padding up to the next sector.
            pos = (pos / SECTOR + 1) * SECTOR;
            continue;
        }
        let rec = parse_record(&image[pos..]);
        pos += image[pos] as usize;
        out.push(rec);
    }
    out
}

fn decode_ucs2(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).unwrap()
}

/// (descriptor type, volume label, root record) of the descriptor at `sector`.
fn descriptor(image: &[u8], sector: usize) -> (u8, String, Rec) {
    let d = &image[sector * SECTOR..(sector + 1) * SECTOR];
    assert_eq!(&d[1..7], b"CD001\x01");
    let label = if d[0] == 2 {
        assert_eq!(&d[88..91], b"%/E", "Joliet escape sequence");
        decode_ucs2(&d[40..72])
    } else {
        String::from_utf8(d[40..72].to_vec()).unwrap()
    };
    assert_eq!(both32_field(&d[80..88]) as usize * SECTOR, image.len(), "volume space size");
    assert_eq!(le32(&d[128..132]) & 0xffff, SECTOR as u32, "logical block size");
    let root = parse_record(&d[156..190]);
    assert_eq!(root.id, [0]);
    assert!(root.is_dir);
    // The path tables name the same root, in both byte orders.
    let l_table = le32(&d[140..144]) as usize * SECTOR;
    let m_table = u32::from_be_bytes(d[148..152].try_into().unwrap()) as usize * SECTOR;
    assert_eq!(le32(&image[l_table + 2..]) as usize, root.extent);
    assert_eq!(
        u32::from_be_bytes(image[m_table + 2..m_table + 6].try_into().unwrap()) as usize,
        root.extent
    );
    (d[0], label.trim_end().to_owned(), root)
}

fn file_data<'a>(image: &'a [u8], rec: &Rec) -> &'a [u8] {
    &image[rec.extent * SECTOR..rec.extent * SECTOR + rec.size]
}

fn seed() -> Vec<u8> {
    let files = [
        IsoFile { name: "user-data", data: b"#cloud-config\nhostname: x\n" },
        IsoFile { name: "meta-data", data: b"local-hostname: podvm-a-12345678\n" },
        IsoFile { name: "vendor-data", data: b"" },
    ];
    build("cidata", &files, at(1_767_225_600 + 3_723)).unwrap()
}

#[test]
fn primary_tree_holds_the_files_under_level_2_names() {
    let image = seed();
    assert_eq!(image.len() % SECTOR, 0);
    let (kind, label, root) = descriptor(&image, 16);
    assert_eq!((kind, label.as_str()), (1, "cidata"));
    let records = read_dir(&image, &root);
    let ids: Vec<String> =
        records.iter().map(|r| String::from_utf8_lossy(&r.id).into_owned()).collect();
    assert_eq!(ids, ["\0", "\u{1}", "META_DATA.;1", "USER_DATA.;1", "VENDOR_DATA.;1"]);
    assert_eq!(records[1].extent, root.extent, "the root's parent is itself");
    assert_eq!(file_data(&image, &records[2]), b"local-hostname: podvm-a-12345678\n");
    assert_eq!(file_data(&image, &records[3]), b"#cloud-config\nhostname: x\n");
    assert_eq!(records[4].size, 0);
    assert!(records[2..].iter().all(|r| !r.is_dir));
    // 2026-01-01 01:02:03 UTC.
    assert_eq!(records[2].date, [126, 1, 1, 1, 2, 3, 0]);
    assert_eq!(&image[16 * SECTOR + 813..16 * SECTOR + 829], b"2026010101020300");
}

#[test]
fn joliet_tree_holds_the_exact_names_and_the_same_data() {
    let image = seed();
    let (kind, label, root) = descriptor(&image, 17);
    assert_eq!((kind, label.as_str()), (2, "cidata"));
    let records = read_dir(&image, &root);
    let names: Vec<String> = records[2..].iter().map(|r| decode_ucs2(&r.id)).collect();
    assert_eq!(names, ["meta-data;1", "user-data;1", "vendor-data;1"]);
    assert_eq!(file_data(&image, &records[3]), b"#cloud-config\nhostname: x\n");
    let (_, _, primary_root) = descriptor(&image, 16);
    assert_ne!(primary_root.extent, root.extent, "each tree has its own root directory");
    assert_eq!(image[18 * SECTOR], 255, "descriptor set terminator");
    assert_eq!(&image[18 * SECTOR + 1..18 * SECTOR + 7], b"CD001\x01");
}

#[test]
fn files_start_on_their_own_sectors_and_large_files_span_several() {
    let big = vec![b'x'; 3 * SECTOR + 5];
    let files = [IsoFile { name: "a", data: &big }, IsoFile { name: "b", data: b"tail" }];
    let image = build("cidata", &files, at(0)).unwrap();
    let (_, _, root) = descriptor(&image, 16);
    let records = read_dir(&image, &root);
    assert_eq!(file_data(&image, &records[2]), &big[..]);
    assert_eq!(file_data(&image, &records[3]), b"tail");
    assert_eq!(records[3].extent, records[2].extent + 4);
    assert_eq!(records[2].date, [70, 1, 1, 0, 0, 0, 0]);
}

#[test]
fn many_files_make_a_directory_of_several_sectors_without_split_records() {
    let names: Vec<String> = (0..80).map(|i| format!("file-number-{i:03}")).collect();
    let files: Vec<IsoFile<'_>> =
        names.iter().map(|n| IsoFile { name: n, data: n.as_bytes() }).collect();
    let image = build("cidata", &files, at(0)).unwrap();
    for sector in [16, 17] {
        let (_, _, root) = descriptor(&image, sector);
        assert!(root.size > SECTOR, "80 records do not fit one sector");
        let records = read_dir(&image, &root);
        assert_eq!(records.len(), 82);
        for rec in &records[2..] {
            let data = file_data(&image, rec);
            assert!(data.starts_with(b"file-number-"), "{data:?}");
        }
    }
}

#[test]
fn bad_names_and_labels_are_refused() {
    let one = |name: &'static str| [IsoFile { name, data: b"" }];
    for name in ["", "a/b", "with space", "ü", "a-very-long-file-name-beyond-the-limit"] {
        assert_eq!(
            build("cidata", &one(name), at(0)),
            Err(IsoError::BadName(name.to_owned())),
            "{name:?}"
        );
    }
    let twins = [IsoFile { name: "a-b", data: b"" }, IsoFile { name: "A_B", data: b"" }];
    assert!(matches!(build("cidata", &twins, at(0)), Err(IsoError::DuplicateName(..))));
    for label in ["", "ci data", "seventeen_chars_x"] {
        assert_eq!(build(label, &one("x"), at(0)), Err(IsoError::BadLabel(label.to_owned())));
    }
}

#[test]
fn stamps_follow_the_gregorian_calendar() {
    let stamp = |secs| Stamp::from(at(secs));
    assert_eq!(stamp(951_782_400).record(), [100, 2, 29, 0, 0, 0, 0]); // 2000-02-29
    assert_eq!(stamp(4_102_444_799).descriptor()[..14], *b"20991231235959");
    // 2100 is not a leap year.
    assert_eq!(stamp(4_107_542_399).descriptor()[..14], *b"21000228235959");
    assert_eq!(stamp(4_107_542_400).descriptor()[..8], *b"21000301");
}

#[test]
fn libblkid_sees_an_iso9660_volume_labelled_cidata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.iso");
    std::fs::write(&path, seed()).unwrap();
    let out = std::process::Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(&path)
        .output()
        .expect("blkid (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "blkid failed: {out:?}");
    assert!(text.lines().any(|l| l == "TYPE=iso9660"), "{text}");
    assert!(text.lines().any(|l| l == "LABEL=cidata"), "{text}");
}
