//! Versions as the clients see them: which .deb versions dpkg accepts, and the order of
//! versions, dpkg's for .deb and rpm's for .rpm (used by `--keep`).

use std::cmp::Ordering;

use anyhow::{Result, bail};

/// Refuses a .deb version that `dpkg --validate-version` refuses (dpkg's `parseversion`,
/// its warnings included: dpkg refuses to install such a package): `[epoch:]upstream[-revision]`
/// with a numeric epoch up to 2^31-1, an upstream version that starts with a digit and holds
/// only letters, digits and `.+~-:`, and a revision of letters, digits and `.+~`.
pub fn check_deb(version: &str) -> Result<()> {
    let refuse = |why: &str| -> Result<()> {
        bail!(
            "the package's version `{}` is not one dpkg accepts: {why}",
            version.escape_debug()
        )
    };
    if version.is_empty() {
        return refuse("it is empty");
    }
    if version.chars().any(char::is_whitespace) {
        return refuse("it holds whitespace");
    }
    let rest = match version.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return refuse("the epoch is not a number");
            }
            if epoch.parse::<i32>().is_err() {
                return refuse("the epoch is too big");
            }
            if rest.is_empty() {
                return refuse("nothing follows the epoch");
            }
            rest
        }
        None => version,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return refuse("the revision after `-` is empty"),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return refuse("the upstream version does not start with a digit");
    }
    if !upstream
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".+~-:".contains(c))
    {
        return refuse(
            "the upstream version holds a character other than letters, digits and .+~-:",
        );
    }
    if !revision
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
    {
        return refuse("the revision holds a character other than letters, digits and .+~");
    }
    Ok(())
}

/// dpkg's order of `[epoch:]upstream[-revision]`.
pub fn cmp_deb(a: &str, b: &str) -> Ordering {
    let split = |v: &str| {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse::<u64>().unwrap_or(0), r),
            None => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream.to_string(), revision.to_string())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(&ua, &ub))
        .then_with(|| verrevcmp(&ra, &rb))
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// rpm's order of (epoch, version, release).
pub fn cmp_rpm(a: (&str, &str, &str), b: (&str, &str, &str)) -> Ordering {
    let epoch = |e: &str| e.parse::<u64>().unwrap_or(0);
    epoch(a.0)
        .cmp(&epoch(b.0))
        .then_with(|| rpmvercmp(a.1, b.1))
        .then_with(|| rpmvercmp(a.2, b.2))
}

/// rpm's `rpmvercmp`.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while a.first().is_some_and(sep) {
            a = &a[1..];
        }
        while b.first().is_some_and(sep) {
            b = &b[1..];
        }
        if a.first() == Some(&b'~') || b.first() == Some(&b'~') {
            if a.first() != Some(&b'~') {
                return Ordering::Greater;
            }
            if b.first() != Some(&b'~') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.first() == Some(&b'^') || b.first() == Some(&b'^') {
            if a.is_empty() {
                return Ordering::Less;
            }
            if b.is_empty() {
                return Ordering::Greater;
            }
            if a.first() != Some(&b'^') {
                return Ordering::Greater;
            }
            if b.first() != Some(&b'^') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a[0].is_ascii_digit();
        let take = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (na, nb) = (take(a), take(b));
        let (sa, sb) = (&a[..na], &b[..nb]);
        if sb.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let trim = |s: &[u8]| {
                let z = s.iter().take_while(|c| **c == b'0').count();
                s[z..].to_vec()
            };
            let (ta, tb) = (trim(sa), trim(sb));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[na..];
        b = &b[nb..];
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (false, _) => Ordering::Greater,
        _ => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_dpkg_refuses_are_refused() {
        for ok in [
            "1.0",
            "1:2:3",
            "0:1",
            "1.0-1-1",
            "9.11.90-1",
            "1.0~rc1+b2-0.1~x",
        ] {
            check_deb(ok).unwrap();
        }
        for bad in [
            "",
            "1.0-",
            "a1",
            ":1",
            "1:",
            "1.0 2",
            "1.0_1",
            "a:1",
            "-1:1",
            "1.0-a_b",
            "99999999999:1",
            "~1",
            "1.0\n",
        ] {
            assert!(check_deb(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn dpkg_order_matches_dpkg_compare_versions_cases() {
        for (a, b, want) in [
            ("10.5.1-1", "9.11.90-1", Greater),
            ("9.11.9-1", "9.11.10-1", Less),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("1.0-1", "1.0-1", Equal),
            ("1.0-2", "1.0-10", Less),
            ("1.0a", "1.0", Greater),
            ("1.0+b1", "1.0", Greater),
        ] {
            assert_eq!(cmp_deb(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn rpm_order_matches_rpmvercmp_cases() {
        for (a, b, want) in [
            ("10.5.1", "9.11.90", Greater),
            ("9.11.9", "9.11.10", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.010", "1.9", Greater),
            ("1.0", "1.0", Equal),
            ("a", "1", Less),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        }
    }
}
