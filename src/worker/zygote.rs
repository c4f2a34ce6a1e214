//! The zygote: a child of the master that imports the app once, freezes the imported objects out
//! of the garbage collector, and forks workers on the master's request as the master's own
//! children (so they share the imported code copy-on-write and boot in milliseconds). Serves no
//! requests and never forks anything the master did not ask for.
use std::sync::Arc;
use std::time::Duration;

use super::{boot_failed, WorkerContext, APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use crate::config::Settings;
use crate::heartbeat::Heartbeats;
use crate::process::{self, Channel, Forked};
use crate::sockets::Listener;
use crate::wsgi::{self, App};

/// What the zygote says on `replies` once the app is imported; pids follow.
pub const ZYGOTE_READY: i32 = 0;

pub struct ZygoteContext<'a> {
    pub settings: &'a Settings,
    pub listeners: &'a [Listener],
    pub heartbeats: Arc<Heartbeats>,
    pub identity: Option<&'a crate::privileges::Identity>,
    /// Slots to fork a worker for, from the master.
    pub requests: &'a Channel,
    /// ZYGOTE_READY, then one pid (or -1) per request.
    pub replies: &'a Channel,
}

/// Runs the zygote; returns its exit code (3 or 4 when the app cannot be loaded).
pub fn run(ctx: ZygoteContext<'_>) -> i32 {
    process::die_with_parent();
    let name = ctx
        .settings
        .proc_name
        .as_deref()
        .unwrap_or(&ctx.settings.wsgi_app);
    process::set_process_title(&format!("rgunicorn: zygote [{name}]"));
    let app = match load(&ctx) {
        Ok(app) => app,
        Err(code) => return code,
    };
    if ctx.replies.send(ZYGOTE_READY).is_err() {
        return WORKER_BOOT_ERROR;
    }
    loop {
        let Some(slot) = ctx.requests.receive(Duration::from_secs(3600)) else {
            continue;
        };
        let forked =
            wsgi::fork_with_python(process::fork_sibling, |r| matches!(r, Ok(Forked::Child)));
        let reply = match forked {
            Ok(Forked::Child) => become_worker(&ctx, &app, slot),
            Ok(Forked::Parent { child }) => child,
            Err(error) => {
                tracing::error!("{error}");
                -1
            }
        };
        if ctx.replies.send(reply).is_err() {
            return 0;
        }
    }
}

fn load(ctx: &ZygoteContext<'_>) -> Result<App, i32> {
    let settings = ctx.settings;
    if let Some(identity) = ctx.identity {
        crate::privileges::drop_to(identity).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    }
    super::start_python(settings).map_err(|e| boot_failed(&e, WORKER_BOOT_ERROR))?;
    let app = App::load(&settings.wsgi_app).map_err(|e| boot_failed(&e, APP_LOAD_ERROR))?;
    wsgi::freeze_heap();
    process::release_read_only_file_pages();
    process::release_free_heap();
    Ok(app)
}

fn become_worker(ctx: &ZygoteContext<'_>, app: &App, slot: i32) -> ! {
    let code = match usize::try_from(slot) {
        Ok(slot) => super::run(WorkerContext {
            settings: ctx.settings,
            listeners: ctx.listeners,
            heartbeats: ctx.heartbeats.clone(),
            slot,
            preloaded: Some(app),
            identity: None,
        }),
        Err(_) => WORKER_BOOT_ERROR,
    };
    std::process::exit(code)
}
