//! Progress on stderr while a command works: a spinner per step, a bar for a plan's phases
//! (both hidden when stderr is not a terminal, so logs and tests see only the result lines).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Runs `f` under a spinner showing `msg` and the time taken.
pub fn phase<T>(msg: &str, f: impl FnOnce() -> T) -> T {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    let r = f();
    pb.finish_and_clear();
    r
}

/// A bar for work reported as `(message, done, total)`.
pub fn bar() -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}
