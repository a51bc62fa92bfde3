//! Shared helpers: snapshot settings that redact machine-specific text,
//! and a progress log.

use harness::ScenarioReport;

/// Insta settings for this crate's tables: temp paths become `[TMP]`, loop
/// devices `[LOOP]`. Bound to the caller's scope by the returned guard.
pub fn redacted() -> insta::internals::SettingsBindDropGuard {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(r"/tmp/[^\s:'\x22]+", "[TMP]");
    settings.add_filter(r"/dev/loop[0-9]+", "[LOOP]");
    settings.bind_to_scope()
}

/// Prints progress of long scenario runs (shown with `--nocapture`).
pub fn log(line: &str) {
    eprintln!("harness: {line}");
}

/// The gate's verdict on each copier, as `name: pass|FAIL` lines.
pub fn verdicts(report: &ScenarioReport) -> String {
    report
        .runs
        .iter()
        .map(|r| {
            let verdict = if r.passed() { "pass" } else { "FAIL" };
            format!("{}: {verdict}\n", r.copier)
        })
        .collect()
}

/// Each copier's upgrade verdicts and the gate's, one line per copier.
pub fn matrix(report: &ScenarioReport) -> String {
    report
        .runs
        .iter()
        .map(|r| {
            let upgrades: Vec<String> = r
                .upgrades
                .iter()
                .map(|u| format!("{} {}", u.strategy, u.verdict))
                .collect();
            let gate = if r.passed() { "pass" } else { "FAIL" };
            format!("{}: {}; gate {gate}\n", r.copier, upgrades.join(", "))
        })
        .collect()
}
