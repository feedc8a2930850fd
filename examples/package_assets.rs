//! The generated files of the Debian package (`scripts/package`): a man
//! page per command (`baton.1`, `baton-apply.1`, ... one per subcommand,
//! with clap_mangen) and the bash, zsh and fish completions (with
//! clap_complete), all from baton's own clap definitions (`baton::cli::Cli`),
//! so they can never describe options the binary does not have. An example
//! rather than a command of baton: nobody needs it at run time, and it is
//! never installed.
//!
//! Usage: package_assets OUT_DIR
//! writes OUT_DIR/man/*.1 (uncompressed; scripts/package gzips them) and
//! OUT_DIR/completions/{baton.bash,_baton,baton.fish}. OUT_DIR/man is emptied
//! first, so the page of a removed subcommand does not linger. The pages'
//! date is that of `SOURCE_DATE_EPOCH` when it is set (scripts/package sets
//! it to the last commit's time, so a rebuild makes the same pages), else
//! today's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// The manual every page names in its header.
const MANUAL: &str = "baton manual";

/// Writes the page of `cmd` and of each of its visible subcommands, the
/// subcommands' pages named `baton-SUB.1` (clap's display name, set when
/// the parent is built).
fn man_pages(cmd: clap::Command, date: &str, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.extend(man_pages(sub.clone(), date, dir)?);
    }
    let page = clap_mangen::Man::new(cmd).date(date).manual(MANUAL);
    written.push(page.generate_to(dir)?);
    Ok(written)
}

/// The pages' date, `YYYY-MM-DD` in UTC (never empty: clap_mangen writes an
/// empty date unquoted, which shifts the header's later fields).
fn date() -> Result<String, String> {
    let at = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(secs) => secs
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .ok_or_else(|| format!("SOURCE_DATE_EPOCH={secs:?} is not a time in seconds"))?,
        Err(_) => jiff::Timestamp::now(),
    };
    Ok(at.strftime("%Y-%m-%d").to_string())
}

fn run(out: &Path, date: &str) -> std::io::Result<()> {
    // `help` is clap's own subcommand: no page of its own (`baton help X`
    // is `baton X --help`), as clap_mangen::generate_to does.
    let mut cmd = baton::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();

    let man = out.join("man");
    if man.exists() {
        std::fs::remove_dir_all(&man)?;
    }
    std::fs::create_dir_all(&man)?;
    for page in man_pages(cmd.clone(), date, &man)? {
        println!("{}", page.display());
    }

    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let file = clap_complete::generate_to(shell, &mut cmd, "baton", &completions)?;
        println!("{}", file.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: package_assets OUT_DIR");
        return ExitCode::from(2);
    };
    let date = match date() {
        Ok(date) => date,
        Err(e) => {
            eprintln!("package_assets: {e}");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(&out), &date) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("package_assets: {}: {e}", Path::new(&out).display());
            ExitCode::FAILURE
        }
    }
}
