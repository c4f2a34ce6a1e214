//! The zygote: a child of the master that imports the app once, freezes the imported objects out
//! of the garbage collector, and forks workers on the master's request as the master's own
//! children (so they share the imported code copy-on-write and boot in milliseconds). Serves no
//! requests and never forks anything the master did not ask for.
use std::sync::Arc;
use std::time::Duration;

use super::link::{ForkRequest, Reply};
use super::{boot_failed, WorkerContext};
use crate::config::Settings;
use crate::error::{APP_LOAD_ERROR, EXIT_OK, WORKER_BOOT_ERROR};
use crate::heartbeat::Heartbeats;
use crate::process::{self, Forked, FrameReader, FrameWriter, Receive};
use crate::sockets::Listener;
use crate::wsgi::{self, App};

pub struct ZygoteContext<'a> {
    pub settings: &'a Settings,
    pub listeners: &'a [Listener],
    pub heartbeats: Arc<Heartbeats>,
    pub identity: Option<&'a crate::privileges::Identity>,
}

/// The zygote's ends of its link: fork requests in, replies out.
pub struct ZygoteLink {
    pub requests: FrameReader,
    pub replies: FrameWriter,
}

/// Runs the zygote; returns its exit code (3 or 4 when the app cannot be loaded).
pub fn run(ctx: ZygoteContext<'_>, link: ZygoteLink) -> i32 {
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
    if link.replies.send(&Reply::Ready.encode()).is_err() {
        return WORKER_BOOT_ERROR;
    }
    serve_fork_requests(&ctx, &app, link)
}

/// Answers fork requests until the master closes the link; never returns in a forked worker.
fn serve_fork_requests(ctx: &ZygoteContext<'_>, app: &App, link: ZygoteLink) -> i32 {
    loop {
        let request = match link.requests.receive(Duration::from_secs(3600)) {
            Ok(frame) => ForkRequest::decode(&frame),
            Err(Receive::TimedOut) => continue,
            Err(Receive::Closed) => return EXIT_OK,
        };
        let Some(request) = request else {
            tracing::error!("zygote: malformed fork request; exiting");
            return WORKER_BOOT_ERROR;
        };
        let forked =
            wsgi::fork_with_python(process::fork_sibling, |r| matches!(r, Ok(Forked::Child)));
        let reply = match forked {
            Ok(Forked::Child) => {
                // The worker must not hold the zygote's link open: the master reads end of file
                // on it only once the zygote itself is gone.
                drop(link);
                become_worker(ctx, app, request)
            }
            Ok(Forked::Parent { child }) => Reply::Forked {
                id: request.id,
                pid: child,
            },
            Err(error) => {
                tracing::error!("{error}");
                Reply::Failed {
                    id: request.id,
                    errno: errno_of(&error),
                }
            }
        };
        if link.replies.send(&reply.encode()).is_err() {
            return EXIT_OK;
        }
    }
}

fn errno_of(error: &crate::Error) -> i32 {
    match error {
        crate::Error::Io { source, .. } => source.raw_os_error().unwrap_or(0),
        _ => 0,
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

fn become_worker(ctx: &ZygoteContext<'_>, app: &App, request: ForkRequest) -> ! {
    let code = super::run(WorkerContext {
        settings: ctx.settings,
        listeners: ctx.listeners,
        heartbeats: ctx.heartbeats.clone(),
        slot: request.slot as usize,
        owner: request.id,
        preloaded: Some(app),
        identity: None,
    });
    std::process::exit(code)
}
