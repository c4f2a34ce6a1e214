//! Decimal digits without the `fmt` machinery, for the text that goes out with every request:
//! Content-Length, access log lines, statsd values. Pure; never allocates beyond `out`.

/// "00" to "99": two digits a step.
const PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// The two digits of `n % 100`.
pub fn two(n: u64) -> [u8; 2] {
    PAIRS[(n % 100) as usize]
}

/// The three digits of `n % 1000`.
pub fn three(n: u64) -> [u8; 3] {
    let [b, c] = two(n);
    [b'0' + (n / 100 % 10) as u8, b, c]
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=9 => out.push(b'0' + n as u8),
        10..=99 => out.extend_from_slice(&two(n)),
        100..=999 => out.extend_from_slice(&three(n)),
        1000..=9999 => {
            let ([a, b], [c, d]) = (two(n / 100), two(n));
            out.extend_from_slice(&[a, b, c, d]);
        }
        _ => push_long(out, n),
    }
}

fn push_long(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    while rest >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&two(rest));
        rest /= 100;
    }
    if rest >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&two(rest));
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_of_number() {
        let numbers = [
            0,
            7,
            9,
            10,
            99,
            100,
            999,
            1000,
            9999,
            10_000,
            1_234_567_890,
            u64::MAX,
        ];
        for n in numbers {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        assert_eq!((two(1907), three(1907)), (*b"07", *b"907"));
    }
}
