/// Whether `text` matches the glob `pattern`: `*` matches any run of
/// characters (none included), `?` exactly one; everything else matches
/// itself. Linear in practice (the classic backtracking-to-last-star
/// algorithm), no allocation.
///
/// ```
/// use llmgate::route::glob_match;
/// assert!(glob_match("claude-*haiku*", "claude-3-5-haiku-latest"));
/// assert!(glob_match("gpt-4?", "gpt-4o"));
/// assert!(!glob_match("gpt-4?", "gpt-4"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("*haiku*", "claude-haiku-4-5", true),
            ("claude-*", "gpt-4o", false),
            ("?", "é", true),
            ("a**", "abc", true),
            ("*a", "bbbba", true),
            ("*a", "bbbb", false),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} ~ {t}");
        }
    }
}
