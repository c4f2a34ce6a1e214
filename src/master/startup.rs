//! What the master does once before supervising: daemonize if asked, set the umask, resolve the
//! workers' user and group, take its listeners (systemd activation, a USR2 handover, or bind),
//! set unix socket file modes and owners, and write the pidfile. Never forks workers.
use crate::config::Settings;
use crate::pidfile::Pidfile;
use crate::privileges::{self, Identity};
use crate::process::current_pid;
use crate::sockets::{self, Listener};
use crate::systemd;
use crate::Result;

use super::reexec;

pub(super) struct Prepared {
    pub listeners: Vec<Listener>,
    pub identity: Option<Identity>,
    pub pidfile: Option<Pidfile>,
    /// The sockets belong to systemd (socket activation): their files are not ours to remove.
    pub sockets_from_systemd: bool,
}

/// `on_starting` runs once detached, before the listeners are taken (gunicorn's on_starting).
pub(super) fn prepare(settings: &Settings, on_starting: impl FnOnce()) -> Result<Prepared> {
    if settings.daemon {
        crate::wsgi::fork_with_python(crate::process::daemonize, Result::is_ok)?;
    }
    on_starting();
    privileges::set_umask(settings.umask);
    let identity = privileges::resolve(settings.user.as_deref(), settings.group.as_deref())?;
    let (listeners, sockets_from_systemd) = take_listeners(settings)?;
    if !sockets_from_systemd {
        for listener in &listeners {
            adjust_socket_file(listener, settings, identity.as_ref())?;
        }
    }
    let pidfile = settings
        .pidfile
        .as_deref()
        .map(|path| Pidfile::create(path, current_pid()))
        .transpose()?;
    Ok(Prepared {
        listeners,
        identity,
        pidfile,
        sockets_from_systemd,
    })
}

fn take_listeners(settings: &Settings) -> Result<(Vec<Listener>, bool)> {
    if let Some(activated) = systemd::activated_listeners() {
        let listeners = activated.into_iter().map(|(_, fd)| sockets::inherit_fd(fd));
        return Ok((listeners.collect::<Result<Vec<_>>>()?, true));
    }
    if let Some(inherited) = reexec::inherited_listeners()? {
        return Ok((inherited, false));
    }
    Ok((
        sockets::bind_all(&settings.bind, settings.backlog, settings.reuse_port)?,
        false,
    ))
}

/// gunicorn chowns unix sockets to the workers' user and group; socket_mode sets the bits.
fn adjust_socket_file(
    listener: &Listener,
    settings: &Settings,
    identity: Option<&Identity>,
) -> Result<()> {
    let Listener::Unix { path, .. } = listener else {
        return Ok(());
    };
    if let Some(identity) = identity {
        privileges::chown_path(path, identity)?;
    }
    if let Some(mode) = settings.socket_mode {
        privileges::chmod_path(path, mode)?;
    }
    Ok(())
}
