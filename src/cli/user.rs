//! `gridcover user add`, `user list`, `user revoke`: the server's users (tokens and roles).

use std::time::Duration;

use clap::{Args, Subcommand};

use super::data::data_dir;
use super::{CliError, DataArg};
use crate::store::{Store, UserInfo};

#[derive(Subcommand)]
/// `gridcover user …`.
pub enum UserCommand {
    /// Create a user and print their token once, alone on the last line (only its hash is stored).
    Add(UserAddArgs),
    /// List every user: id, name, role, grids, created, expires, revoked (never a token or its
    /// hash); a table, or JSON with --json.
    List(UserListArgs),
    /// Revoke every active token of the user(s) of this name; a running server refuses them
    /// within a second. Exit 2 when the name holds no active token. Recorded in the audit log.
    Revoke(UserRevokeArgs),
}

#[derive(Args)]
/// Arguments of `gridcover user list`.
pub struct UserListArgs {
    /// Print JSON (an array of {id, name, role, grids, created_at, expires_at, revoked_at,
    /// state}) instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArg,
}

#[derive(Args)]
/// Arguments of `gridcover user revoke`.
pub struct UserRevokeArgs {
    /// The user's name, as `user list` shows it.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    data: DataArg,
}

/// `--expires-in`: `N` followed by `d` (days), `h` (hours) or `m` (minutes); more than zero,
/// at most ten years.
fn parse_expiry(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration: write N followed by d, h or m (e.g. 90d, 12h, 30m)");
    let unit = s.chars().last().ok_or_else(bad)?;
    let per: u64 = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        _ => return Err(bad()),
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let max = crate::store::MAX_EXPIRY;
    let too_long = || {
        format!("{s} is too long: a token expires at most {} days (ten years) after it is made", max.as_secs() / 86_400)
    };
    let n: u64 = digits.parse().map_err(|_| too_long())?;
    if n == 0 {
        return Err(format!("{s} is no time at all: a token must stay valid for more than zero (omit --expires-in for a token that never expires)"));
    }
    let secs = n.checked_mul(per).ok_or_else(too_long)?;
    if secs > max.as_secs() {
        return Err(too_long());
    }
    Ok(Duration::from_secs(secs))
}

#[derive(Args)]
/// Arguments of `gridcover user add`.
pub struct UserAddArgs {
    /// Display name.
    #[arg(long)]
    name: String,
    /// Role: leader, planner or grid_worker.
    #[arg(long)]
    role: crate::store::Role,
    /// A grid the grid worker serves (repeat for several).
    #[arg(long = "grid")]
    grids: Vec<String>,
    /// The token expires this long after now: N followed by d, h or m (e.g. 90d; at most
    /// 3650d). Without it, the token stays valid until revoked.
    #[arg(long, value_name = "DURATION", value_parser = parse_expiry)]
    expires_in: Option<Duration>,
    #[command(flatten)]
    data: DataArg,
}

/// Runs `gridcover user …`.
///
/// # Errors
/// A refusal of the input (an empty name, an unknown grid, no active token to revoke), a
/// missing data folder, a store from a newer gridcover (exit 2); a store that cannot be opened
/// or written (1).
pub fn run(c: UserCommand) -> Result<(), CliError> {
    let data = match &c {
        UserCommand::Add(a) => &a.data,
        UserCommand::List(a) => &a.data,
        UserCommand::Revoke(a) => &a.data,
    };
    let dir = data_dir(data.data.as_deref())?;
    let store = Store::open(&dir)?;
    let done = match c {
        UserCommand::Add(a) => store.add_user_expiring(&a.name, a.role, &a.grids, a.expires_in).map(|token| {
            let expiry = match a.expires_in {
                Some(d) => format!("expires in {} min", d.as_secs() / 60),
                None => "never expires".to_string(),
            };
            eprintln!(
                "user {} ({}) added to {}; the token {expiry}; it is shown once:",
                a.name.trim(),
                a.role,
                store.path().display()
            );
            println!("{token}");
        }),
        UserCommand::List(a) => store.users().map(|users| {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&users).expect("users serialise"));
            } else {
                print!("{}", users_table(&users));
                if users.is_empty() {
                    eprintln!("no users in {} (add one with `gridcover user add`)", store.path().display());
                }
            }
        }),
        UserCommand::Revoke(a) => store.revoke_user(&a.name).map(|revoked| {
            for u in &revoked {
                eprintln!(
                    "revoked the token of user {} {} ({}) at {}",
                    u.id,
                    u.name,
                    u.role,
                    u.revoked_at.as_deref().unwrap_or("?")
                );
            }
            println!("{} token(s) of {} revoked", revoked.len(), a.name.trim());
        }),
    };
    Ok(done?)
}

/// The users as a table: one line each, columns aligned (names by display width).
fn users_table(users: &[UserInfo]) -> String {
    use unicode_width::UnicodeWidthStr;
    let time = |t: &str| match t.split_once('.') {
        Some((s, _)) => format!("{s}Z"),
        None => t.to_string(),
    };
    let mut rows = vec![["id", "name", "role", "grids", "created", "expires", "revoked"].map(String::from)];
    for u in users {
        let expires = match (&u.expires_at, u.state) {
            (None, _) => "never".to_string(),
            (Some(t), "expired") => format!("{} (expired)", time(t)),
            (Some(t), _) => time(t),
        };
        rows.push([
            u.id.to_string(),
            u.name.clone(),
            u.role.to_string(),
            if u.grids.is_empty() { "-".to_string() } else { u.grids.join(",") },
            time(&u.created_at),
            expires,
            u.revoked_at.as_deref().map_or_else(|| "no".to_string(), time),
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|k| rows.iter().map(|r| r[k].width()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (k, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if k + 1 < r.len() {
                line.push_str(&" ".repeat(widths[k] - cell.width() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
