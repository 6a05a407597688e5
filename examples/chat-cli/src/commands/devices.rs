//! `devices` and `logout`.

use super::Context;
use crate::error::Result;
use crate::output::format_ts;
use crate::session;

/// `devices`: `device_id  name  last seen` per line, `this device` marking
/// the one of this session.
pub(super) async fn list(ctx: &Context) -> Result<()> {
    let printer = ctx.printer();
    for device in ctx.api.devices().await? {
        if printer.json() {
            printer.value(&device);
            continue;
        }
        let seen = device
            .last_seen
            .map_or_else(|| "never connected".to_owned(), format_ts);
        let this = if device.current { "\tthis device" } else { "" };
        println!(
            "{}\t{}\t{seen}{this}",
            device.device_id,
            device.name.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// `logout [DEVICE_ID]`: logs a device out (its token stops working and its
/// connections close). When that is this session's device, the session file
/// goes too: its token is of no more use.
pub(super) async fn logout(ctx: &Context, device: Option<&str>) -> Result<()> {
    let this_device = match device {
        None => {
            ctx.api.logout().await?;
            true
        }
        Some(id) => {
            ctx.api.remove_device(id).await?;
            ctx.device_id.as_deref() == Some(id)
        }
    };
    if this_device && let Some(file) = &ctx.session_file {
        session::remove(file)?;
    }
    Ok(())
}
