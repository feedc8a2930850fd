//! The `command` method: the user's switch hook on the controller, then
//! the query hook to confirm where traffic went.

use super::Switched;
use crate::config::{CommandSwitch, Host};
use crate::core::holder::{classify, Holder, HookFailed, HostSays, Says};
use crate::core::op::{Hook, Op};
use crate::core::quote;
use crate::exec::{failure, output, Exec, Failed, World};

/// The switch hook's line, its placeholders filled and quoted.
pub fn switch_line(c: &CommandSwitch, from: &Host, to: &Host) -> String {
    c.switch
        .replace("{from}", &quote::quote(&from.name))
        .replace("{to}", &quote::quote(&to.name))
        .replace("{from_address}", &quote::quote(&from.address.to_string()))
        .replace("{to_address}", &quote::quote(&to.address.to_string()))
}

/// What the query hook prints (trimmed), or why it failed.
pub async fn ask<W: World>(x: &mut Exec<'_, W>, c: &CommandSwitch) -> Result<String, HookFailed> {
    let op = Op::Hook {
        purpose: Hook::Query,
        command: c.query.clone(),
    };
    let out = output(&op, x.perform(op.clone()).await);
    match out {
        Ok(o) if o.success() => Ok(o.stdout_text().trim().to_string()),
        other => Err(HookFailed(failure("the query hook", &other))),
    }
}

/// Runs the switch hook, then asks the query hook.
pub async fn switch<W: World>(
    x: &mut Exec<'_, W>,
    c: &CommandSwitch,
    from: &Host,
    to: &Host,
) -> Result<Switched, Failed> {
    let op = Op::Hook {
        purpose: Hook::Switch {
            to: to.name.clone(),
        },
        command: switch_line(c, from, to),
    };
    let out = output(&op, x.perform(op.clone()).await);
    if !out.as_ref().is_ok_and(|o| o.success()) {
        return Err(Failed(failure("the switch hook", &out)));
    }
    let said = ask(x, c).await;
    let hosts = x.pair.hosts.clone().map(|h| HostSays {
        name: h.name,
        address: Some(h.address),
        holds_vip: None,
    });
    match classify(&hosts, &Says::Hook(&said)).certain() {
        Holder::Host(h) if h == to.name => Ok(Switched {
            detail: format!("the hook moved traffic to {}", to.name),
            ..Switched::default()
        }),
        other => Err(Failed(format!(
            "after the switch hook, traffic is not on {}: {}",
            to.name,
            super::describe(x.pair, &other)
        ))),
    }
}
