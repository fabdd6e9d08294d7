//! The traffic-control half of the worker-side bridge: an ingress qdisc on each end and a u32
//! match-all filter whose mirred action steals every frame and redirects it out of the other
//! end. Our filters carry a fixed priority so teardown deletes only them, and an ingress qdisc
//! is deleted only when setup created it.

use rtnetlink::Handle;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcHandle, TcMessage};

use crate::PodNetError;
use crate::error::{netlink, netlink_errno};
use crate::nl::{EEXIST, ack, is_gone};

/// Priority ("pref") of our redirect filters.
pub const FILTER_PRIORITY: u16 = 0xcaa;
/// Handle of an ingress qdisc, `ffff:`.
const INGRESS_QDISC: u32 = 0xffff_0000;
/// ETH_P_ALL in network byte order, as the kernel reads `TC_H_MIN(tcm_info)`.
const PROTOCOL_ALL: u16 = 0x0003u16.to_be();

/// Adds an ingress qdisc on `index`. Returns false when one was already there (not ours).
pub(crate) async fn add_ingress(h: &Handle, index: u32, name: &str) -> Result<bool, PodNetError> {
    match h.qdisc().add(index as i32).ingress().execute().await {
        Ok(()) => Ok(true),
        Err(e) if netlink_errno(&e) == Some(EEXIST) => Ok(false),
        Err(e) => Err(netlink(format!("add ingress qdisc on {name}"), e)),
    }
}

/// Redirects every frame arriving on `from` out of `to` (mirred egress redirect, stolen).
pub(crate) async fn add_redirect(
    h: &Handle,
    from: u32,
    to: u32,
    names: (&str, &str),
) -> Result<(), PodNetError> {
    let req = h
        .traffic_filter(from as i32)
        .add()
        .parent(INGRESS_QDISC)
        .priority(FILTER_PRIORITY)
        .protocol(PROTOCOL_ALL)
        .redirect(to)
        .map_err(|e| netlink(format!("build redirect {} -> {}", names.0, names.1), e))?;
    // Exclusive create: callers delete a filter of ours left from an earlier try first.
    req.execute().await.map_err(|e| netlink(format!("add redirect {} -> {}", names.0, names.1), e))
}

/// Deletes our redirect filter on `index`; absent is fine.
pub(crate) async fn del_redirect(h: &Handle, index: u32, name: &str) -> Result<(), PodNetError> {
    let mut msg = TcMessage::with_index(index as i32);
    msg.header.parent = INGRESS_QDISC.into();
    msg.header.info = (u32::from(FILTER_PRIORITY) << 16) | u32::from(PROTOCOL_ALL);
    match ack(h, RouteNetlinkMessage::DelTrafficFilter(msg), 0).await {
        Err(e) if !is_gone(&e) => Err(netlink(format!("delete redirect filter on {name}"), e)),
        _ => Ok(()),
    }
}

/// Deletes the ingress qdisc on `index` (and with it any filter still attached); absent is fine.
pub(crate) async fn del_ingress(h: &Handle, index: u32, name: &str) -> Result<(), PodNetError> {
    let mut msg = TcMessage::with_index(index as i32);
    msg.header.parent = TcHandle::INGRESS;
    msg.header.handle = INGRESS_QDISC.into();
    match ack(h, RouteNetlinkMessage::DelQueueDiscipline(msg), 0).await {
        Err(e) if !is_gone(&e) => Err(netlink(format!("delete ingress qdisc on {name}"), e)),
        _ => Ok(()),
    }
}
