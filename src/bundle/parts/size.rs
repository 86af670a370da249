//! The size syntax of `--split`: a byte count, a number with a binary or decimal unit,
//! or `fat32`. Kept apart from the parts format because it is command-line syntax, not
//! a file format.

/// The largest file FAT32 can hold (4 GiB − 1 byte): `--split fat32`.
pub const FAT32_MAX: u64 = 4 * 1024 * 1024 * 1024 - 1;
/// The smallest part size `--split` accepts.
pub const MIN_SPLIT: u64 = 4096;

/// Parses a `--split` size: a byte count (`1000000`), a number with a binary unit
/// (`64K`, `700M`, `4G`, `1T`, also written `KiB`, `MiB`, `GiB`, `TiB`), with a decimal
/// unit (`KB`, `MB`, `GB`, `TB`: powers of 1000), or `fat32` (4 GiB − 1 byte, the largest
/// file a FAT32 stick holds; note that `4G` is one byte too many for FAT32).
pub fn parse_split(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("fat32") {
        return Ok(FAT32_MAX);
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let bad = || {
        format!(
            "`{s}` is not a part size; write a byte count (1000000), a size with a unit \
             (700M, 4G, 4GiB; K/M/G/T are powers of 1024, KB/MB/GB/TB powers of 1000), or `fat32`"
        )
    };
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KI" | "KIB" => 1 << 10,
        "M" | "MI" | "MIB" => 1 << 20,
        "G" | "GI" | "GIB" => 1 << 30,
        "T" | "TI" | "TIB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("part size `{s}` is too large"))?;
    if bytes < MIN_SPLIT {
        return Err(format!(
            "part size `{s}` is {bytes} bytes; parts must be at least {MIN_SPLIT} bytes"
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
}
