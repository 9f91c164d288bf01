//! A loaded component, of whichever WIT version it was built against: pre-instantiated
//! ([`Pre`]) or live ([`Bindings`]), with [`dispatch!`] to write a call once for every version;
//! and [`describe`], which reads a new adapter's manifest.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Engine;

use super::Limits;
use super::bindings::{since_v0_1_0, since_v0_2_0, since_v0_3_0};
use super::cache::HostCache;
use super::grants::Grant;
use super::sandbox::{Sandbox, new_store};
use crate::domain::AdapterInfo;

/// A component pre-instantiated with the bindings of the WIT version it was built against.
pub(crate) enum Pre {
    V0_1_0(since_v0_1_0::AdapterPre<Sandbox>),
    V0_2_0(since_v0_2_0::AdapterPre<Sandbox>),
    V0_3_0(since_v0_3_0::AdapterPre<Sandbox>),
}

/// A live instance's bindings, of its WIT version.
pub(crate) enum Bindings {
    V0_1_0(since_v0_1_0::Adapter),
    V0_2_0(since_v0_2_0::Adapter),
    V0_3_0(since_v0_3_0::Adapter),
}

/// Runs `$body` with `$v` bound to the value inside a [`Pre`] or [`Bindings`] and `$m` naming
/// that version's bindings module, so one text serves every version.
/// With `$wrap`, also binds the [`Bindings`] variant of that version.
macro_rules! dispatch {
    ($enum:ident, $value:expr, |$v:ident, $m:ident| $body:expr) => {
        dispatch!($enum, $value, |$v, $m, _wrap| $body)
    };
    ($enum:ident, $value:expr, |$v:ident, $m:ident, $wrap:ident| $body:expr) => {
        match $value {
            $enum::V0_1_0($v) => {
                #[allow(unused_imports)]
                use super::bindings::since_v0_1_0 as $m;
                #[allow(unused_variables)]
                let $wrap = Bindings::V0_1_0;
                $body
            }
            $enum::V0_2_0($v) => {
                #[allow(unused_imports)]
                use super::bindings::since_v0_2_0 as $m;
                #[allow(unused_variables)]
                let $wrap = Bindings::V0_2_0;
                $body
            }
            $enum::V0_3_0($v) => {
                #[allow(unused_imports)]
                use super::bindings::since_v0_3_0 as $m;
                #[allow(unused_variables)]
                let $wrap = Bindings::V0_3_0;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// Reads the manifest of a freshly loaded adapter.
pub(crate) async fn describe(
    engine: &Engine,
    pre: &Pre,
    limits: &Limits,
    cache: &Arc<HostCache>,
) -> anyhow::Result<AdapterInfo> {
    // No storage yet: the all-zero namespace, shared by every `describe` and equal to no
    // storage's SHA-256 in practice.
    let mut store = new_store(engine, &Grant::default(), limits, (cache.clone(), [0; 32]))?;
    store.data_mut().deadline = Instant::now() + limits.call_timeout;
    let store = &mut store;
    let described = dispatch!(Pre, pre, |pre, m| {
        tokio::time::timeout(limits.call_timeout, async move {
            let instance = pre.instantiate_async(&mut *store).await?;
            Ok::<AdapterInfo, anyhow::Error>(instance.stowage_storage_backend_api().call_describe(store).await?.into())
        })
        .await
    });
    described.map_err(|_| anyhow::anyhow!("describe did not answer within {} ms", limits.call_timeout.as_millis()))?
}
