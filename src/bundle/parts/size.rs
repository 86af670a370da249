//! The size syntax of `--split`: a byte count, a number with a binary or decimal unit,
//! or `fat32`. Kept apart from the parts format because it is command-line syntax, not
//! a file format. `push --chunk-size` takes the same numbers and units
//! ([`parse_chunk_size`]) but not `fat32`, and words its errors for chunks: both go
//! through one number-and-unit parser, [`parse_bytes`], and differ only in what they
//! accept besides and how they say what is wrong.

/// The largest file FAT32 can hold (4 GiB − 1 byte): `--split fat32`.
pub const FAT32_MAX: u64 = 4 * 1024 * 1024 * 1024 - 1;
/// The smallest part size `--split` accepts.
pub const MIN_SPLIT: u64 = 4096;
/// The smallest chunk size `push --chunk-size` accepts.
pub const MIN_CHUNK: u64 = 4096;

/// What is wrong with a size that [`parse_bytes`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeError {
    /// Not a number with an optional unit.
    Malformed,
    /// More bytes than a `u64` holds.
    TooLarge,
}

/// Parses a byte count (`1000000`) or a number with a binary unit (`64K`, `700M`,
/// `4G`, `1T`, also written `KiB`, `MiB`, `GiB`, `TiB`) or a decimal one (`KB`, `MB`,
/// `GB`, `TB`: powers of 1000); `t` is already trimmed, spaces between the number and
/// the unit are allowed.
fn parse_bytes(t: &str) -> Result<u64, SizeError> {
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(SizeError::Malformed);
    }
    let n: u64 = num.parse().map_err(|_| SizeError::Malformed)?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KI" | "KIB" => 1 << 10,
        "M" | "MI" | "MIB" => 1 << 20,
        "G" | "GI" | "GIB" => 1 << 30,
        "T" | "TI" | "TIB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(SizeError::Malformed),
    };
    n.checked_mul(mult).ok_or(SizeError::TooLarge)
}

/// Parses a `--split` size: a byte count (`1000000`), a number with a binary unit
/// (`64K`, `700M`, `4G`, `1T`, also written `KiB`, `MiB`, `GiB`, `TiB`), with a decimal
/// unit (`KB`, `MB`, `GB`, `TB`: powers of 1000), or `fat32` (4 GiB − 1 byte, the largest
/// file a FAT32 stick holds; note that `4G` is one byte too many for FAT32).
pub fn parse_split(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("fat32") {
        return Ok(FAT32_MAX);
    }
    let bytes = parse_bytes(t).map_err(|e| match e {
        SizeError::Malformed => format!(
            "`{s}` is not a part size; write a byte count (1000000), a size with a unit \
             (700M, 4G, 4GiB; K/M/G/T are powers of 1024, KB/MB/GB/TB powers of 1000), or `fat32`"
        ),
        SizeError::TooLarge => format!("part size `{s}` is too large"),
    })?;
    if bytes < MIN_SPLIT {
        return Err(format!(
            "part size `{s}` is {bytes} bytes; parts must be at least {MIN_SPLIT} bytes"
        ));
    }
    Ok(bytes)
}

/// Parses a `push --chunk-size` size: a byte count or a number with a unit, as for
/// [`parse_split`], but not `fat32` (a chunk is a request, not a file on a stick).
pub fn parse_chunk_size(s: &str) -> Result<u64, String> {
    let bytes = parse_bytes(s.trim()).map_err(|e| match e {
        SizeError::Malformed => format!(
            "`{s}` is not a chunk size; write a byte count (1000000) or a size with a unit \
             (16M, 100M, 1GiB; K/M/G/T are powers of 1024, KB/MB/GB/TB powers of 1000)"
        ),
        SizeError::TooLarge => format!("chunk size `{s}` is too large"),
    })?;
    if bytes < MIN_CHUNK {
        return Err(format!(
            "chunk size `{s}` is {bytes} bytes; chunks must be at least {MIN_CHUNK} bytes"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes() {
        assert_eq!(parse_split("1000000"), Ok(1_000_000));
        assert_eq!(parse_split("700M"), Ok(700 << 20));
        assert_eq!(parse_split("4G"), Ok(4 << 30));
        assert_eq!(parse_split("4GiB"), Ok(4 << 30));
        assert_eq!(parse_split("4gib"), Ok(4 << 30));
        assert_eq!(parse_split("64K"), Ok(64 << 10));
        assert_eq!(parse_split("1T"), Ok(1 << 40));
        assert_eq!(parse_split("700MB"), Ok(700_000_000));
        assert_eq!(parse_split("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_split(" 8 K "), Ok(8192));
        assert!(parse_split("100B").is_err());
        assert_eq!(parse_split("fat32"), Ok(4_294_967_295));
        assert_eq!(parse_split("FAT32"), Ok(FAT32_MAX));
        assert!(parse_split("").is_err());
        assert!(parse_split("G").is_err());
        assert!(parse_split("4X").is_err());
        assert!(parse_split("-4G").is_err());
        assert!(parse_split("1.5G").is_err());
        assert!(parse_split("0").unwrap_err().contains("at least"));
        assert!(
            parse_split("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn split_messages() {
        assert_eq!(
            parse_split("4X").unwrap_err(),
            "`4X` is not a part size; write a byte count (1000000), a size with a unit (700M, \
             4G, 4GiB; K/M/G/T are powers of 1024, KB/MB/GB/TB powers of 1000), or `fat32`"
        );
        assert_eq!(
            parse_split("99999999999T").unwrap_err(),
            "part size `99999999999T` is too large"
        );
        assert_eq!(
            parse_split("1K").unwrap_err(),
            "part size `1K` is 1024 bytes; parts must be at least 4096 bytes"
        );
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size("16K"), Ok(16 << 10));
        assert_eq!(parse_chunk_size("100M"), Ok(100 << 20));
        assert_eq!(parse_chunk_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_chunk_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_chunk_size(" 8 K "), Ok(8192));
        assert_eq!(parse_chunk_size("4096"), Ok(4096));
        for bad in ["", "G", "4X", "-4G", "1.5G", "fat32", "FAT32"] {
            assert!(parse_chunk_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunk_messages() {
        assert_eq!(
            parse_chunk_size("fat32").unwrap_err(),
            "`fat32` is not a chunk size; write a byte count (1000000) or a size with a unit \
             (16M, 100M, 1GiB; K/M/G/T are powers of 1024, KB/MB/GB/TB powers of 1000)"
        );
        assert_eq!(
            parse_chunk_size("99999999999T").unwrap_err(),
            "chunk size `99999999999T` is too large"
        );
        assert_eq!(
            parse_chunk_size("1K").unwrap_err(),
            "chunk size `1K` is 1024 bytes; chunks must be at least 4096 bytes"
        );
        for bad in ["4X", "1K", "99999999999T"] {
            let e = parse_chunk_size(bad).unwrap_err();
            assert!(!e.contains("part"), "{e}");
        }
    }
}
