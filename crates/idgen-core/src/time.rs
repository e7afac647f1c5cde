//! RFC 3339 times both ways, to the millisecond: what the decoders write and what
//! `/v1/bounds` reads. Hand-written (Howard Hinnant's calendar algorithms) rather than a date
//! crate: these two functions are all the crate needs of one.

/// The last millisecond RFC 3339 can write, 9999-12-31T23:59:59.999Z: its years have four
/// digits. A decoded time past it is refused rather than written with a longer year.
pub const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// Formats ms since the Unix epoch as RFC 3339 UTC with millisecond precision,
/// e.g. `2020-01-01T00:00:00.000Z`. Past [`MAX_RFC3339_MS`] the year has more than four digits,
/// which is no longer RFC 3339: the decoders refuse such times before formatting them.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Reads a time as `GET /v1/bounds/{kind}?time=` takes it: Unix ms (decimal digits), or an
/// RFC 3339 date-time such as `2026-12-06T21:00:00Z` or `2026-12-06T22:00:00.125+01:00` (`t`,
/// `z` and a space for `T` too, as RFC 3339 allows). Digits finer than the millisecond are
/// dropped: the time is the millisecond they fall in. `None` for anything else, for a date
/// that does not exist, a leap second (`:60`, which Unix time does not count) or a time before
/// 1970.
pub fn parse_time_ms(text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text.parse().ok();
    }
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits.bytes().all(|byte| byte.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 20
        || separators.iter().any(|&(at, byte)| bytes[at] != byte)
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first_three = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = first_three.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) =
                (number(text.len() - 5..text.len() - 3)?, number(text.len() - 2..text.len())?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            if *sign == b'+' { hours * 60 + minutes } else { -(hours * 60 + minutes) }
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1_000 + millis).ok()
}

/// Howard Hinnant's civil-to-days algorithm: days since 1970-01-01 of a proleptic Gregorian
/// date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ms: u64, expected: &str) {
        assert_eq!(rfc3339_ms(ms), expected, "for {ms}");
    }

    #[test]
    fn parses_ms_and_rfc3339_times_to_the_millisecond() {
        let cases = [
            ("0", Some(0)),
            ("1765054800000", Some(1_765_054_800_000)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-12-06T21:00:00Z", Some(1_796_590_800_000)),
            ("2026-12-06t21:00:00z", Some(1_796_590_800_000)),
            ("2026-12-06 21:00:00Z", Some(1_796_590_800_000)),
            ("2026-12-06T22:00:00+01:00", Some(1_796_590_800_000)),
            ("2026-12-06T16:30:00-04:30", Some(1_796_590_800_000)),
            ("2026-12-06T21:00:00.1Z", Some(1_796_590_800_100)),
            ("2026-12-06T21:00:00.125Z", Some(1_796_590_800_125)),
            // Finer than the millisecond: the millisecond it falls in.
            ("2026-12-06T21:00:00.125999999Z", Some(1_796_590_800_125)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("9999-12-31T23:59:59.999Z", Some(MAX_RFC3339_MS)),
            ("2023-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-12-06T24:00:00Z", None),
            ("2026-12-06T23:59:60Z", None),
            ("2026-12-06T21:00:00", None),
            ("2026-12-06T21:00:00.Z", None),
            ("2026-12-06T21:00:00+0100", None),
            ("2026-12-06T21:00:00+24:00", None),
            ("1969-12-31T23:59:59.999Z", None),
            ("1970-01-01T00:30:00+01:00", None),
            ("2026-12-06", None),
            ("", None),
            ("-5", None),
            ("18446744073709551616", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_time_ms(text), expected, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_formatted_time_parses_back(ms in 0..=MAX_RFC3339_MS) {
            proptest::prop_assert_eq!(parse_time_ms(&rfc3339_ms(ms)), Some(ms));
        }
    }

    #[test]
    fn formats_rfc3339() {
        check(0, "1970-01-01T00:00:00.000Z");
        check(1_577_836_800_000, "2020-01-01T00:00:00.000Z");
        check(951_782_400_123, "2000-02-29T00:00:00.123Z");
        check(4_102_444_799_999, "2099-12-31T23:59:59.999Z");
        check(1_709_251_199_001, "2024-02-29T23:59:59.001Z");
    }
}
