//! `cryb64`: the 64-bit string hash vlcn uses to version schemas (`@vlcn.io/xplat-api`,
//! `@vlcn.io/ws-common`), so a schema hashed here and one hashed by vlcn's JavaScript agree.
//!
//! The hash runs over the string's UTF-16 code units (JavaScript's `charCodeAt`), as two
//! 32-bit multiply-xor lanes finished with avalanche rounds (the "cyrb53" family, without
//! cyrb53's truncation to 53 bits). The result is `h2 * 2^32 + h1` with both lanes read as
//! signed 32-bit integers; that sum can fall just below `i64::MIN` (when `h2 = i32::MIN` and
//! `h1 < 0`), where it wraps, the only way to store it in SQLite's INTEGER.

/// Hashes `text` as vlcn's `cryb64(text)` (seed 0) does.
pub fn cryb64(text: &str) -> i64 {
    cryb64_seeded(text, 0)
}

/// Hashes `text` with a seed, as vlcn's `cryb64(text, seed)`.
pub fn cryb64_seeded(text: &str, seed: u32) -> i64 {
    let mut h1: u32 = 0xdead_beef ^ seed;
    let mut h2: u32 = 0x41c6_ce57 ^ seed;
    for unit in text.encode_utf16() {
        let ch = u32::from(unit);
        h1 = (h1 ^ ch).wrapping_mul(2_654_435_761);
        h2 = (h2 ^ ch).wrapping_mul(1_597_334_677);
    }
    h1 = (h1 ^ (h1 >> 16)).wrapping_mul(2_246_822_507);
    h1 ^= (h2 ^ (h2 >> 13)).wrapping_mul(3_266_489_909);
    h2 = (h2 ^ (h2 >> 16)).wrapping_mul(2_246_822_507);
    h2 ^= (h1 ^ (h1 >> 13)).wrapping_mul(3_266_489_909);
    // JavaScript's bitwise results are signed 32-bit: BigInt(h2) * 2^32 + BigInt(h1).
    let hi = i64::from(h2 as i32);
    let lo = i64::from(h1 as i32);
    hi.wrapping_mul(1 << 32).wrapping_add(lo)
}

#[cfg(test)]
mod tests {
    use super::cryb64;

    #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_family = "wasm"), test)]
    fn design_vectors() {
        assert_eq!(cryb64(""), 5_227_514_475_777_527_171);
        assert_eq!(cryb64("a"), 5_772_536_816_540_940_545);
        assert_eq!(cryb64("hello"), -4_634_081_719_991_045_594);
        assert_eq!(cryb64("é😀"), -9_078_854_739_831_091_122);
    }
}
