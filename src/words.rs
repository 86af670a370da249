//! Words for human output: a count with its noun in the right number (`1 image`,
//! `2 images`, `1 index`, `2 indexes`), used by every summary and report so none
//! writes `image(s)`.

/// `n` followed by `noun`, singular for 1, plural otherwise. The noun is given in the
/// singular; a trailing `s`, `x`, `ch` or `sh` takes `es`, anything else `s`. A noun of
/// several words (`image name`) has its last word inflected.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {}", plural(noun))
    }
}

/// The plural of `noun` (see [`count`]).
pub fn plural(noun: &str) -> String {
    if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_for_one_plural_otherwise() {
        assert_eq!(count(0, "image"), "0 images");
        assert_eq!(count(1, "image"), "1 image");
        assert_eq!(count(2, "blob"), "2 blobs");
        assert_eq!(count(1, "index"), "1 index");
        assert_eq!(count(3, "index"), "3 indexes");
        assert_eq!(count(2, "image name"), "2 image names");
        assert_eq!(count(1, "zstd layer"), "1 zstd layer");
    }
}
