//! The arithmetic of `INCRBYFLOAT` and `HINCRBYFLOAT`, digit for digit as Redis does it.
//!
//! Redis parses both operands with C's `strtold`, adds them as x87 80-bit `long double`s
//! (a 64-bit mantissa) and prints the sum with `printf("%.17Lf")`, trailing zeros removed.
//! A Rust `f64` gives other digits (`0.1 + 0.2` is `0.30000000000000004`, where Redis says
//! `0.3`), so this module emulates the format: parsing and addition are correctly rounded
//! to 64 significant bits, ties to even, and printing is exact.
//!
//! Not emulated: subnormal numbers (below about 3.4e-4932), which are flushed to zero.

use std::cmp::Ordering;

/// Significant bits of an x87 extended-precision mantissa.
const MANTISSA_BITS: i64 = 64;
/// Largest `e` of a finite value `m × 2^e` with a normalized 64-bit `m` (x87's largest
/// binary exponent is 16383).
const MAX_EXP: i64 = 16383 - (MANTISSA_BITS - 1);
/// Smallest `e` of a normal value (x87's smallest binary exponent is -16382).
const MIN_EXP: i64 = -16382 - (MANTISSA_BITS - 1);
/// Digits after the point Redis prints (`%.17Lf`).
const FRACTION_DIGITS: usize = 17;
/// 10^17, the scale of those digits.
const FRACTION_SCALE: u128 = 100_000_000_000_000_000;
/// Inputs this long or longer are refused, as Redis's `string2ld` refuses them (its
/// `MAX_LONG_DOUBLE_CHARS` buffer).
const MAX_INPUT_BYTES: usize = 5 * 1024;
/// Decimal magnitudes beyond which a number surely overflows or underflows the format
/// (x87 spans about 3.4e-4932 to 1.2e4932); they are refused before any big arithmetic.
const MAX_DECIMAL_MAGNITUDE: i64 = 4934;
/// Bits of quotient computed when dividing by a power of ten (at least 66 are needed to
/// round to 64 bits correctly).
const QUOTIENT_BITS: u32 = 69;

/// A finite `long double`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    negative: bool,
    magnitude: Magnitude,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Magnitude {
    Zero,
    /// `mantissa × 2^exp`, with the mantissa's top bit set.
    Finite {
        mantissa: u64,
        exp: i64,
    },
    Infinite,
}

impl LongDouble {
    /// Parses a float the way Redis's `string2ld` does: `strtold` syntax (decimal, hex
    /// `0x1.8p3`, `inf`), no surrounding spaces, no NaN, nothing that overflows or
    /// underflows to zero. Unlike the stored result of an increment, `inf` is accepted.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= MAX_INPUT_BYTES {
            return None;
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble {
                negative,
                magnitude: Magnitude::Infinite,
            });
        }
        let parsed = match body {
            [b'0', b'x' | b'X', rest @ ..] if starts_hex_mantissa(rest) => parse_hex(rest)?,
            _ => parse_decimal(body)?,
        };
        Some(LongDouble {
            negative,
            magnitude: parsed?,
        })
    }

    /// The exact value of an integer (64 mantissa bits hold every `i64`).
    pub fn from_i64(n: i64) -> LongDouble {
        let magnitude = n.unsigned_abs();
        if magnitude == 0 {
            return LongDouble::ZERO;
        }
        let shift = magnitude.leading_zeros();
        LongDouble {
            negative: n < 0,
            magnitude: Magnitude::Finite {
                mantissa: magnitude << shift,
                exp: -i64::from(shift),
            },
        }
    }

    const ZERO: LongDouble = LongDouble {
        negative: false,
        magnitude: Magnitude::Zero,
    };

    /// Whether it is infinite.
    pub fn is_infinite(self) -> bool {
        self.magnitude == Magnitude::Infinite
    }

    /// The correctly rounded sum, or `None` if it is NaN or infinite (Redis's "increment
    /// would produce NaN or Infinity").
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        let sum = match (self.magnitude, other.magnitude) {
            (Magnitude::Infinite, _) | (_, Magnitude::Infinite) => return None,
            (Magnitude::Zero, _) if other.magnitude != Magnitude::Zero => other,
            (_, Magnitude::Zero) => self,
            (
                Magnitude::Finite {
                    mantissa: ma,
                    exp: ea,
                },
                Magnitude::Finite {
                    mantissa: mb,
                    exp: eb,
                },
            ) => add_finite((self.negative, ma, ea), (other.negative, mb, eb)),
            (Magnitude::Zero, _) => LongDouble::ZERO,
        };
        (!sum.is_infinite()).then_some(sum)
    }

    /// Formats it as Redis replies to an increment: `%.17Lf` with trailing zeros (and a
    /// trailing point) removed, and `0` rather than `-0`.
    pub fn to_redis_string(self) -> String {
        let (int_part, fraction) = match self.magnitude {
            Magnitude::Zero => return "0".to_string(),
            Magnitude::Infinite => {
                return if self.negative { "-inf" } else { "inf" }.to_string();
            }
            Magnitude::Finite { mantissa, exp } if exp >= 0 => {
                let mut n = Big::from_u64(mantissa);
                n.shl(u64::try_from(exp).unwrap_or(0));
                (n.to_decimal(), 0)
            }
            Magnitude::Finite { mantissa, exp } => {
                let scaled = scale_fraction(mantissa, exp.unsigned_abs());
                (
                    (scaled / FRACTION_SCALE).to_string(),
                    scaled % FRACTION_SCALE,
                )
            }
        };
        let mut out = String::with_capacity(int_part.len() + FRACTION_DIGITS + 2);
        if self.negative && (int_part != "0" || fraction != 0) {
            out.push('-');
        }
        out.push_str(&int_part);
        if fraction != 0 {
            let digits = format!("{fraction:0width$}", width = FRACTION_DIGITS);
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        out
    }
}

/// `mantissa / 2^shift` scaled by 10^17 and rounded to an integer, ties to even.
fn scale_fraction(mantissa: u64, shift: u64) -> u128 {
    let product = u128::from(mantissa) * FRACTION_SCALE; // < 2^121
    if shift >= 122 {
        return 0; // below half of the last printed digit
    }
    let kept = product >> shift;
    let rest = product & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if rest > half || (rest == half && kept & 1 == 1) {
        kept + 1
    } else {
        kept
    }
}

/// Rounds `bits × 2^exp` to 64 significant bits, ties to even; `sticky` says nonzero bits
/// below `bits` were already dropped. Out-of-range results become infinite or zero.
fn round(negative: bool, bits: u128, sticky: bool, exp: i64) -> LongDouble {
    if bits == 0 {
        return LongDouble::ZERO;
    }
    let len = 128 - i64::from(bits.leading_zeros());
    let (mantissa, exp) = if len <= MANTISSA_BITS {
        let shift = MANTISSA_BITS - len;
        ((bits << shift) as u64, exp - shift)
    } else {
        let shift = len - MANTISSA_BITS;
        let kept = (bits >> shift) as u64;
        let rest = bits & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let up = rest > half || (rest == half && (sticky || kept & 1 == 1));
        match kept.checked_add(u64::from(up)) {
            Some(m) => (m, exp + shift),
            None => (1u64 << 63, exp + shift + 1),
        }
    };
    let magnitude = if exp > MAX_EXP {
        Magnitude::Infinite
    } else if exp < MIN_EXP {
        Magnitude::Zero
    } else {
        Magnitude::Finite { mantissa, exp }
    };
    LongDouble {
        negative,
        magnitude,
    }
}

/// Adds two finite nonzero values `(negative, mantissa, exp)`.
fn add_finite(a: (bool, u64, i64), b: (bool, u64, i64)) -> LongDouble {
    // Headroom below the mantissa: enough guard bits that shifting with a sticky bit
    // rounds like the exact sum.
    const GUARD: i64 = 62;
    let (big, small) = if a.2 >= b.2 { (a, b) } else { (b, a) };
    let big_bits = u128::from(big.1) << GUARD;
    let distance = big.2 - small.2;
    let small_full = u128::from(small.1) << GUARD;
    let (small_bits, sticky) = if distance >= 127 {
        (0, true)
    } else {
        let shifted = small_full >> distance;
        (shifted, shifted << distance != small_full)
    };
    // Jam the sticky bit into the lowest place: it is far below the rounding position.
    let small_bits = small_bits | u128::from(sticky);
    let exp = big.2 - GUARD;
    if big.0 == small.0 {
        return round(big.0, big_bits + small_bits, false, exp);
    }
    match big_bits.cmp(&small_bits) {
        Ordering::Equal => LongDouble::ZERO,
        Ordering::Greater => round(big.0, big_bits - small_bits, false, exp),
        Ordering::Less => round(small.0, small_bits - big_bits, false, exp),
    }
}

fn starts_hex_mantissa(rest: &[u8]) -> bool {
    match rest {
        [c, ..] if c.is_ascii_hexdigit() => true,
        [b'.', c, ..] => c.is_ascii_hexdigit(),
        _ => false,
    }
}

/// Parses an optional exponent suffix (`e-5`, `p+3`) that must end the input; `None` if
/// anything else is left.
fn parse_exponent(rest: &[u8], marker: u8) -> Option<i64> {
    let Some((&first, digits)) = rest.split_first() else {
        return Some(0);
    };
    if !first.eq_ignore_ascii_case(&marker) {
        return None;
    }
    let (negative, digits) = match digits {
        [b'-', d @ ..] => (true, d),
        [b'+', d @ ..] => (false, d),
        d => (false, d),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturate: anything this large overflows or underflows anyway.
    let n = digits.iter().fold(0i64, |acc, d| {
        acc.saturating_mul(10)
            .saturating_add(i64::from(d - b'0'))
            .min(1 << 40)
    });
    Some(if negative { -n } else { n })
}

/// Parses decimal digits with an optional point and `e` exponent. The outer `None` means
/// a syntax error; the inner one a value that overflows or underflows.
fn parse_decimal(body: &[u8]) -> Option<Option<Magnitude>> {
    let int_len = body.iter().take_while(|c| c.is_ascii_digit()).count();
    let (int_digits, rest) = body.split_at(int_len);
    let (frac_digits, rest) = match rest {
        [b'.', after @ ..] => {
            let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
            after.split_at(n)
        }
        _ => (&b""[..], rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let exp10 = parse_exponent(rest, b'e')?;
    let mut digits: Vec<u8> = int_digits.iter().chain(frac_digits).copied().collect();
    let mut exp10 = exp10 - i64::try_from(frac_digits.len()).unwrap_or(i64::MAX);
    let leading = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..leading);
    while digits.last() == Some(&b'0') {
        digits.pop();
        exp10 += 1;
    }
    if digits.is_empty() {
        return Some(Some(Magnitude::Zero));
    }
    let magnitude10 = i64::try_from(digits.len()).unwrap_or(i64::MAX) + exp10;
    if magnitude10.abs() > MAX_DECIMAL_MAGNITUDE + 20 {
        return Some(None);
    }
    let mut n = Big::from_decimal(&digits);
    let value = if exp10 >= 0 {
        n.mul_pow10(exp10.unsigned_abs());
        let (top, sticky, shift) = n.top_bits();
        round(false, top, sticky, shift)
    } else {
        let mut divisor = Big::from_u64(1);
        divisor.mul_pow10(exp10.unsigned_abs());
        // Scale so the quotient has 67 to 69 bits.
        let k = i64::from(QUOTIENT_BITS) - 1 + divisor.bit_len() - n.bit_len();
        if k >= 0 {
            n.shl(k.unsigned_abs());
        } else {
            divisor.shl(k.unsigned_abs());
        }
        let (quotient, sticky) = n.divide(&divisor, QUOTIENT_BITS);
        round(false, quotient, sticky, -k)
    };
    Some(match value.magnitude {
        Magnitude::Finite { .. } => Some(value.magnitude),
        _ => None,
    })
}

/// Parses hex digits (after `0x`) with an optional point and `p` binary exponent.
fn parse_hex(rest: &[u8]) -> Option<Option<Magnitude>> {
    let (mut bits, mut sticky, mut exp2) = (0u128, false, 0i64);
    let mut seen_point = false;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = char::from(c).to_digit(16) {
            if bits < 1 << 120 {
                bits = bits * 16 + u128::from(d);
                exp2 -= if seen_point { 4 } else { 0 };
            } else {
                sticky |= d != 0;
                exp2 += if seen_point { 0 } else { 4 };
            }
        } else {
            break;
        }
        i += 1;
    }
    let exp2 = exp2 + parse_exponent(&rest[i..], b'p')?;
    let value = round(false, bits, sticky, exp2);
    Some(match value.magnitude {
        Magnitude::Finite { .. } => Some(value.magnitude),
        Magnitude::Zero if bits == 0 => Some(Magnitude::Zero),
        _ => None,
    })
}

/// A minimal unsigned big integer (little-endian 32-bit limbs) for exact conversions.
#[derive(Clone, Debug)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(n: u64) -> Big {
        let mut b = Big(vec![n as u32, (n >> 32) as u32]);
        b.trim();
        b
    }

    fn from_decimal(digits: &[u8]) -> Big {
        let mut b = Big(Vec::new());
        for chunk in digits.chunks(9) {
            let value = chunk
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            b.mul_add(10u32.pow(chunk.len() as u32), value);
        }
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn mul_add(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(factor) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut n: u64) {
        while n > 0 {
            let step = n.min(9);
            self.mul_add(10u32.pow(step as u32), 0);
            n -= step;
        }
    }

    fn shl(&mut self, bits: u64) {
        let limbs = usize::try_from(bits / 32).unwrap_or(usize::MAX);
        let bits = (bits % 32) as u32;
        if bits > 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = (u64::from(*limb) << bits) | u64::from(carry);
                *limb = v as u32;
                carry = (v >> 32) as u32;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if !self.is_zero() {
            self.0.splice(0..0, std::iter::repeat_n(0, limbs));
        }
    }

    fn bit_len(&self) -> i64 {
        match self.0.last() {
            None => 0,
            Some(top) => {
                i64::try_from(self.0.len() * 32).unwrap_or(i64::MAX)
                    - i64::from(top.leading_zeros())
            }
        }
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`, for `self >= other`.
    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = i64::from(*limb) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            *limb = v.rem_euclid(1 << 32) as u32;
        }
        self.trim();
    }

    /// The top (up to) 128 bits, whether any lower bit is set, and the exponent of the
    /// lowest kept bit.
    fn top_bits(&self) -> (u128, bool, i64) {
        let drop = (self.bit_len() - 128).max(0);
        let mut top = 0u128;
        let mut sticky = false;
        for bit in (0..self.bit_len()).rev() {
            let set = self.0[(bit / 32) as usize] >> (bit % 32) & 1 == 1;
            if bit >= drop {
                top = (top << 1) | u128::from(set);
            } else if set {
                sticky = true;
                break;
            }
        }
        (top, sticky, drop)
    }

    /// The quotient `self / divisor` (which must be below `2^bits`) and whether a
    /// remainder is left; consumes `self` as the running remainder.
    fn divide(mut self, divisor: &Big, bits: u32) -> (u128, bool) {
        let mut quotient = 0u128;
        for i in (0..bits).rev() {
            let mut shifted = divisor.clone();
            shifted.shl(u64::from(i));
            if self.cmp(&shifted) != Ordering::Less {
                self.sub_assign(&shifted);
                quotient |= 1 << i;
            }
        }
        (quotient, !self.is_zero())
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            let mut rem = 0u64;
            for limb in n.0.iter_mut().rev() {
                let v = (rem << 32) | u64::from(*limb);
                *limb = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            n.trim();
            chunks.push(rem);
        }
        let mut out = chunks
            .pop()
            .map_or_else(|| "0".to_string(), |c| c.to_string());
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::LongDouble;

    fn incr(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        a.checked_add(b).map(LongDouble::to_redis_string)
    }

    #[test]
    fn sums_print_the_digits_redis_prints() {
        // Reference values from redis-server 7.0 on x86-64.
        let cases = [
            ("10.50", "0.1", "10.6"),
            ("10.6", "-5", "5.6"),
            ("5.0e3", "2.0e2", "5200"),
            ("0.1", "0.2", "0.3"),
            ("5.6", "5000", "5005.60000000000000009"),
            ("0", "0x10", "16"),
            ("0", "1e400", "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"),
            ("1", "-1", "0"),
            ("-0.000000000000000001", "0", "0"),
            ("3", "1.5", "4.5"),
            ("7", "0.25", "7.25"),
        ];
        for (a, b, want) in cases {
            assert_eq!(incr(a, b).as_deref(), Some(want), "{a} + {b}");
        }
    }

    #[test]
    fn parsing_follows_strtold_and_redis_checks() {
        for ok in [
            "1",
            "-1.5",
            "+2",
            ".5",
            "5.",
            "1e5",
            "1E-5",
            "0x1p4",
            "0X.8",
            "inf",
            "-Infinity",
            "0",
            "0e99999",
        ] {
            assert!(LongDouble::parse(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "1e+", "0x", "0xg", ".", "-", "1e99999",
            "1e-99999", "1..2", "0x1p",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn infinities_do_not_add() {
        assert_eq!(incr("inf", "1"), None);
        assert_eq!(incr("1", "-inf"), None);
        assert_eq!(incr("1e4932", "1e4932"), None);
    }

    #[test]
    fn integers_convert_exactly() {
        let max = LongDouble::from_i64(i64::MAX);
        assert_eq!(max.to_redis_string(), "9223372036854775807");
        assert_eq!(
            LongDouble::from_i64(i64::MIN).to_redis_string(),
            "-9223372036854775808"
        );
        assert_eq!(LongDouble::from_i64(0).to_redis_string(), "0");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                                        b in "[-+]?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][-+]?[0-9]{1,5})?") {
            let x = LongDouble::parse(&a);
            if let (Some(x), Some(y)) = (x, LongDouble::parse(b.as_bytes())) {
                if let Some(sum) = x.checked_add(y) {
                    let _ = sum.to_redis_string();
                }
            }
            if let Some(y) = LongDouble::parse(b.as_bytes()) {
                let _ = y.to_redis_string();
                let _ = y.checked_add(LongDouble::from_i64(i64::MIN));
            }
        }
    }
}
