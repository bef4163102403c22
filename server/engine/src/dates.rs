//! Calendar dates (UTC) for commit times: `YYYY-MM-DD` both ways.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of `secs` seconds since the Unix epoch, as `YYYY-MM-DD` (UTC).
pub fn format_date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Seconds since the Unix epoch at the start (UTC) of `YYYY-MM-DD`; `None` for anything else.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let valid = (1..=12).contains(&m) && (1..=31).contains(&d);
    let secs = days_from_civil(y, m, d) * 86_400;
    (valid && format_date(secs) == format!("{y:04}-{m:02}-{d:02}")).then_some(secs)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// The month a text names as "March 2025" (or "Mar 2025"): from its first second to the
/// next month's, in seconds since the Unix epoch (UTC).
pub fn month_window(text: &str) -> Option<(i64, i64)> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words.windows(2).find_map(|w| {
        let month =
            MONTHS.iter().position(|m| w[0] == *m || (w[0].len() == 3 && m.starts_with(&w[0])))?;
        let year: i64 = w[1].parse().ok().filter(|y| (1970..=9999).contains(y))?;
        let m = month as i64 + 1;
        let start = days_from_civil(year, m, 1) * 86_400;
        let (ny, nm) = if m == 12 { (year + 1, 1) } else { (year, m + 1) };
        Some((start, days_from_civil(ny, nm, 1) * 86_400))
    })
}

/// The year and month (1–12) of `secs`.
fn year_month(secs: i64) -> (i64, i64) {
    let d = format_date(secs);
    (d[..4].parse().unwrap_or(1970), d[5..7].parse().unwrap_or(1))
}

/// The first second of month `m` (1–12, or past 12 into the next years) of year `y`.
fn month_start(y: i64, m: i64) -> i64 {
    let (y, m) = (y + (m - 1).div_euclid(12), (m - 1).rem_euclid(12) + 1);
    days_from_civil(y, m, 1) * 86_400
}

/// The window a question names relative to `now`: "this month", "last month", "this
/// quarter", "last quarter", "this year", "last year".
pub fn relative_window(text: &str, now: i64) -> Option<(i64, i64)> {
    let t = text.to_ascii_lowercase();
    let (y, m) = year_month(now);
    let q = (m - 1) / 3 * 3 + 1;
    let windows = [
        ("this month", (month_start(y, m), month_start(y, m + 1))),
        ("last month", (month_start(y, m - 1), month_start(y, m))),
        ("this quarter", (month_start(y, q), month_start(y, q + 3))),
        ("last quarter", (month_start(y, q - 3), month_start(y, q))),
        ("this year", (month_start(y, 1), month_start(y + 1, 1))),
        ("last year", (month_start(y - 1, 1), month_start(y, 1))),
    ];
    windows.iter().find(|(phrase, _)| t.contains(phrase)).map(|(_, w)| *w)
}

/// The commit-time window a question names: a month ("March 2025"), else a span relative
/// to `now` ("this quarter").
pub fn window_in(text: &str, now: i64) -> Option<(i64, i64)> {
    month_window(text).or_else(|| relative_window(text, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(1_700_000_000), "2023-11-14");
        assert_eq!(parse_date("2023-11-14"), Some(1_699_920_000));
        assert_eq!(parse_date("2024-02-29").map(format_date).as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("2023-02-29"), None, "not a day of that year");
        assert_eq!(parse_date("last week"), None);
    }

    #[test]
    fn a_month_named_in_a_question_is_its_window() {
        let (a, b) = month_window("Why did `fuse` change in March 2025?").unwrap();
        assert_eq!(
            (format_date(a).as_str(), format_date(b).as_str()),
            ("2025-03-01", "2025-04-01")
        );
        let (a, b) = month_window("what changed in dec 2024").unwrap();
        assert_eq!(
            (format_date(a).as_str(), format_date(b).as_str()),
            ("2024-12-01", "2025-01-01")
        );
        assert_eq!(month_window("may I ask why 42 changed"), None);
    }

    #[test]
    fn this_quarter_and_last_month_are_counted_from_now() {
        let now = parse_date("2026-12-02").unwrap();
        let dates = |w: Option<(i64, i64)>| w.map(|(a, b)| (format_date(a), format_date(b)));
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        let q = "What did we change about payments this quarter, and why?";
        assert_eq!(dates(window_in(q, now)), pair("2026-10-01", "2027-01-01"));
        assert_eq!(dates(window_in("and last month?", now)), pair("2026-11-01", "2026-12-01"));
        let jan = parse_date("2026-01-15").unwrap();
        assert_eq!(dates(window_in("last quarter", jan)), pair("2025-10-01", "2026-01-01"));
        assert_eq!(
            dates(window_in("in March 2025, this year", now)),
            pair("2025-03-01", "2025-04-01")
        );
        assert_eq!(window_in("why is it slow?", now), None);
    }
}
