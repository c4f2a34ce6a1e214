//! OS: gunicorn's `user`, `group` and `umask`, and the owner and mode of unix socket files:
//! resolves names to ids, drops a worker's privileges after fork, sets the umask. Never decides
//! who calls what when: the master (sockets, umask) and the worker (drop_to) do.
use std::path::Path;

use nix::sys::stat::Mode;
use nix::unistd::{Gid, Group, Uid, User};

use crate::{Error, Result};

/// The user and group the workers run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

/// Resolves the `user` and `group` settings (names, or numeric ids that need not exist); None
/// when neither is set. Without `group`, the group is the user's primary group where the user
/// is known (gunicorn keeps the master's group instead), else the master's effective group;
/// without `user`, the user is the master's effective user.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Identity>> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let (uid, primary_gid) = match user {
        Some(user) => lookup_user(user)?,
        None => (Uid::effective().as_raw(), None),
    };
    let gid = match group {
        Some(group) => lookup_group(group)?,
        None => primary_gid.unwrap_or_else(|| Gid::effective().as_raw()),
    };
    Ok(Some(Identity { uid, gid }))
}

/// The uid, and the primary gid when the passwd database knows the user.
fn lookup_user(value: &str) -> Result<(u32, Option<u32>)> {
    let allowed = "a user name or numeric uid known to this system";
    if let Some(uid) = numeric_id(value) {
        let known = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        return Ok((uid, known.map(|u| u.gid.as_raw())));
    }
    match User::from_name(value.trim()) {
        Ok(Some(user)) => Ok((user.uid.as_raw(), Some(user.gid.as_raw()))),
        Ok(None) => Err(Error::config("user", value, allowed)),
        Err(errno) => Err(Error::io(format!("look up user {value:?}"), errno.into())),
    }
}

fn lookup_group(value: &str) -> Result<u32> {
    let allowed = "a group name or numeric gid known to this system";
    if let Some(gid) = numeric_id(value) {
        return Ok(gid);
    }
    match Group::from_name(value.trim()) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(Error::config("group", value, allowed)),
        Err(errno) => Err(Error::io(format!("look up group {value:?}"), errno.into())),
    }
}

/// `"33"` is an id, as in gunicorn; names are everything else.
fn numeric_id(value: &str) -> Option<u32> {
    let value = value.trim();
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| value.parse().ok()).flatten()
}

/// Which calls `drop_to` makes.
#[derive(Debug, PartialEq, Eq)]
struct Steps {
    setgroups: bool,
    setgid: bool,
    setuid: bool,
}

/// Root drops everything, supplementary groups first; anyone else only changes what differs
/// (and gets EPERM if that is not allowed).
fn steps(euid: u32, uid: u32, gid: u32, target: &Identity) -> Steps {
    let root = euid == 0;
    Steps {
        setgroups: root,
        setgid: root || gid != target.gid,
        setuid: root || uid != target.uid || euid != target.uid,
    }
}

/// Switches this process (a worker, just after fork) to `identity`: setgroups([gid]), setgid,
/// setuid, in that order, so that no root group survives and the last step is the one that
/// gives up the right to do the others.
pub fn drop_to(identity: &Identity) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(identity.uid), Gid::from_raw(identity.gid));
    let plan = steps(
        Uid::effective().as_raw(),
        Uid::current().as_raw(),
        Gid::current().as_raw(),
        identity,
    );
    let failed = |call: String| move |errno: nix::Error| Error::io(call, errno.into());
    if plan.setgroups {
        nix::unistd::setgroups(&[gid]).map_err(failed(format!("setgroups([{gid}])")))?;
    }
    if plan.setgid {
        nix::unistd::setgid(gid).map_err(failed(format!("setgid({gid})")))?;
    }
    if plan.setuid {
        nix::unistd::setuid(uid).map_err(failed(format!("setuid({uid})")))?;
    }
    Ok(())
}

/// umask(2); only the permission bits (0o777) count.
pub fn set_umask(mask: u32) {
    nix::sys::stat::umask(Mode::from_bits_truncate((mask & 0o777) as libc::mode_t));
}

/// chown(2), for unix socket files the workers must be able to use.
pub fn chown_path(path: &Path, identity: &Identity) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(identity.uid), Gid::from_raw(identity.gid));
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|errno| {
        let action = format!("chown {} to {uid}:{gid}", path.display());
        Error::io(action, errno.into())
    })
}

/// chmod(2) to `mode` (permission bits and setuid/setgid/sticky, 0o7777).
pub fn chmod_path(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let permissions = std::fs::Permissions::from_mode(mode & 0o7777);
    std::fs::set_permissions(path, permissions)
        .map_err(|e| Error::io(format!("chmod {:o} {}", mode, path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> Identity {
        Identity {
            uid: Uid::current().as_raw(),
            gid: Gid::current().as_raw(),
        }
    }

    #[test]
    fn nothing_to_resolve_without_user_or_group() {
        assert_eq!(resolve(None, None).unwrap(), None);
    }

    #[test]
    fn names_and_numbers_resolve() {
        let root = resolve(Some("root"), None).unwrap().unwrap();
        assert_eq!(root, Identity { uid: 0, gid: 0 });
        let numeric = resolve(Some("12345"), Some(" 54321 ")).unwrap().unwrap();
        assert_eq!(
            numeric,
            Identity {
                uid: 12345,
                gid: 54321
            }
        );
        let group_only = resolve(None, Some("0")).unwrap().unwrap();
        assert_eq!(group_only.uid, Uid::effective().as_raw());
        assert_eq!(group_only.gid, 0);
        let unknown_uid = resolve(Some("4000000000"), None).unwrap().unwrap();
        assert_eq!(unknown_uid.gid, Gid::effective().as_raw());
    }

    #[test]
    fn unknown_names_are_config_errors_naming_the_key() {
        let cases = [
            (
                Some("no-such-user-rg"),
                None,
                "user",
                "user name or numeric uid",
            ),
            (
                None,
                Some("no-such-group-rg"),
                "group",
                "group name or numeric gid",
            ),
            (Some("99999999999"), None, "user", "user name"),
        ];
        for (user, group, key, allowed) in cases {
            match resolve(user, group) {
                Err(Error::Config {
                    key: k,
                    value,
                    allowed: a,
                }) => {
                    assert_eq!(k, key);
                    assert_eq!(Some(value.as_str()), user.or(group));
                    assert!(a.contains(allowed), "{a}");
                }
                other => panic!("{user:?} {group:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn root_drops_everything_others_only_what_differs() {
        let nobody = Identity {
            uid: 65534,
            gid: 65534,
        };
        let all = Steps {
            setgroups: true,
            setgid: true,
            setuid: true,
        };
        assert_eq!(steps(0, 0, 0, &nobody), all);
        assert_eq!(steps(0, 0, 0, &Identity { uid: 0, gid: 0 }), all);
        let none = Steps {
            setgroups: false,
            setgid: false,
            setuid: false,
        };
        assert_eq!(
            steps(
                1000,
                1000,
                100,
                &Identity {
                    uid: 1000,
                    gid: 100
                }
            ),
            none
        );
        let other = steps(1000, 1000, 100, &nobody);
        assert!(other.setgid && other.setuid && !other.setgroups);
    }

    #[test]
    fn dropping_to_ourselves_works_for_anyone() {
        // Root keeps root (setgroups([0]) changes only the supplementary groups of this test
        // process); anyone else makes no call at all.
        drop_to(&me()).unwrap();
        assert_eq!(Uid::current().as_raw(), me().uid);
    }

    #[test]
    fn chmod_and_chown_a_file() {
        let path = std::env::temp_dir().join(format!("rgunicorn-priv-{}", std::process::id()));
        std::fs::write(&path, "x").unwrap();
        chmod_path(&path, 0o640).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        chown_path(&path, &me()).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (me().uid, me().gid));
        std::fs::remove_file(&path).unwrap();
        let err = chmod_path(&path, 0o600).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
