//! Small rtnetlink queries and requests shared by the worker and VM sides: links by name,
//! IPv4 addresses, main-table routes, the primary interface, raw acknowledged requests.

use std::net::Ipv4Addr;

use futures_util::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::error::{netlink, netlink_errno};
use crate::netns::Ns;
use crate::{Ipv4Cidr, PodNetError};

const ENODEV: i32 = 19;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EINVAL: i32 = 22;

/// True for the errnos a delete of something already gone answers with.
pub(crate) fn is_gone(e: &rtnetlink::Error) -> bool {
    matches!(netlink_errno(e), Some(ENODEV | ENOENT | ESRCH | EINVAL))
}

/// The link called `name`, if any.
pub(crate) async fn link_by_name(
    h: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, PodNetError> {
    match h.link().get().match_name(name).execute().try_next().await {
        Ok(link) => Ok(link),
        Err(e) if matches!(netlink_errno(&e), Some(ENODEV)) => Ok(None),
        Err(e) => Err(netlink(format!("look up link {name}"), e)),
    }
}

/// The link called `name`, or an error naming the namespace.
pub(crate) async fn require_link(ns: &Ns, name: &str) -> Result<LinkMessage, PodNetError> {
    link_by_name(ns.handle(), name).await?.ok_or_else(|| PodNetError::NoSuchInterface {
        name: name.to_owned(),
        netns: ns.path().to_owned(),
    })
}

/// Every link in the namespace.
pub(crate) async fn links(h: &Handle) -> Result<Vec<LinkMessage>, PodNetError> {
    h.link().get().execute().try_collect().await.map_err(|e| netlink("list links", e))
}

/// `IFLA_IFNAME`.
pub(crate) fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// `IFLA_ADDRESS`.
pub(crate) fn link_mac(link: &LinkMessage) -> Option<&[u8]> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) => Some(m.as_slice()),
        _ => None,
    })
}

/// `IFLA_MTU`.
pub(crate) fn link_mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// What identifies one of our tunnels: kind vxlan with this VNI and port.
pub(crate) fn is_vxlan(link: &LinkMessage, vni: u32, port: u16) -> bool {
    let mut kind = false;
    let (mut id, mut dport) = (None, None);
    for a in &link.attributes {
        let LinkAttribute::LinkInfo(infos) = a else { continue };
        for info in infos {
            match info {
                LinkInfo::Kind(InfoKind::Vxlan) => kind = true,
                LinkInfo::Data(InfoData::Vxlan(data)) => {
                    for d in data {
                        match d {
                            InfoVxlan::Id(v) => id = Some(*v),
                            InfoVxlan::Port(p) => dport = Some(*p),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    kind && id == Some(vni) && dport == Some(port)
}

/// Formats a MAC as `0a:58:0a:f4:01:07`.
pub(crate) fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `0a:58:0a:f4:01:07` (either case).
pub(crate) fn parse_mac(text: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|p| if p.len() == 2 { u8::from_str_radix(p, 16).ok() } else { None })
        .collect::<Option<_>>()?;
    (bytes.len() == 6).then_some(bytes)
}

/// IPv4 addresses (with prefix) of the link with index `index`, in kernel order.
pub(crate) async fn ipv4_addrs(h: &Handle, index: u32) -> Result<Vec<Ipv4Cidr>, PodNetError> {
    let msgs: Vec<_> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| netlink(format!("list addresses of link {index}"), e))?;
    let mut out = Vec::new();
    for m in msgs {
        if m.header.family != AddressFamily::Inet || m.header.index != index {
            continue;
        }
        let addr = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        });
        let addr = addr.or_else(|| {
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(std::net::IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            })
        });
        if let Some(c) = addr.and_then(|a| Ipv4Cidr::new(a, m.header.prefix_len)) {
            out.push(c);
        }
    }
    Ok(out)
}

/// IPv4 unicast routes of the main table.
pub(crate) async fn main_routes(h: &Handle) -> Result<Vec<RouteMessage>, PodNetError> {
    let all: Vec<RouteMessage> = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(|e| netlink("list IPv4 routes", e))?;
    Ok(all
        .into_iter()
        .filter(|r| {
            r.header.address_family == AddressFamily::Inet
                && r.header.kind == RouteType::Unicast
                && route_table(r) == u32::from(RouteHeader::RT_TABLE_MAIN)
        })
        .collect())
}

fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

/// `RTA_OIF`.
pub(crate) fn route_oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// `RTA_GATEWAY` (IPv4).
pub(crate) fn route_gateway(r: &RouteMessage) -> Option<Ipv4Addr> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

/// `RTA_DST` with the header's prefix length; `0.0.0.0/0` when absent.
pub(crate) fn route_dst(r: &RouteMessage) -> Ipv4Cidr {
    let addr = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        })
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    Ipv4Cidr::new(addr, r.header.destination_prefix_length)
        .unwrap_or(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("0 is a valid prefix"))
}

/// The primary interface (index and name): the device of a main-table IPv4 default route. With
/// several, the first is kept unless a later one has the same name stem and a lower number
/// (`eth1` gives way to `eth0`), as upstream does.
pub(crate) async fn primary_interface(ns: &Ns) -> Result<Option<(u32, String)>, PodNetError> {
    let routes = main_routes(ns.handle()).await?;
    let links = links(ns.handle()).await?;
    let mut candidates = Vec::new();
    for r in routes.iter().filter(|r| r.header.destination_prefix_length == 0) {
        let Some(oif) = route_oif(r) else { continue };
        if let Some(name) = links.iter().find(|l| l.header.index == oif).and_then(link_name) {
            candidates.push((oif, name.to_owned()));
        }
    }
    let names: Vec<&str> = candidates.iter().map(|(_, n)| n.as_str()).collect();
    let chosen = pick_primary(&names);
    Ok(chosen.and_then(|i| candidates.get(i).cloned()))
}

/// Index into `names` of the primary interface (see [`primary_interface`]).
pub(crate) fn pick_primary(names: &[&str]) -> Option<usize> {
    let split = |n: &str| {
        let stem = n.trim_end_matches(|c: char| c.is_ascii_digit());
        (stem.len(), n[stem.len()..].parse::<u64>().ok())
    };
    let mut best = if names.is_empty() { return None } else { 0 };
    for (i, name) in names.iter().enumerate().skip(1) {
        let (stem_len, num) = split(name);
        let (best_len, best_num) = split(names[best]);
        let same_stem = stem_len == best_len && name[..stem_len] == names[best][..best_len];
        if let (true, Some(n), Some(b)) = (same_stem, num, best_num)
            && n < b
        {
            best = i;
        }
    }
    Some(best)
}

/// Sends `msg` with ACK requested and returns the kernel's verdict.
pub(crate) async fn ack(
    h: &Handle,
    msg: RouteNetlinkMessage,
    extra_flags: u16,
) -> Result<(), rtnetlink::Error> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
    let mut resp = h.clone().request(req)?;
    while let Some(m) = resp.next().await {
        if let NetlinkPayload::Error(e) = m.payload
            && e.code.is_some()
        {
            return Err(rtnetlink::Error::NetlinkError(e));
        }
    }
    Ok(())
}

/// Deletes the link with `index`; a link already gone is fine.
pub(crate) async fn delete_link(h: &Handle, index: u32, name: &str) -> Result<(), PodNetError> {
    match h.link().del(index).execute().await {
        Err(e) if !is_gone(&e) => Err(netlink(format!("delete link {name}"), e)),
        _ => Ok(()),
    }
}

/// `EEXIST`: a link, address, route or filter of that identity exists already.
pub(crate) const EEXIST: i32 = 17;

/// Renames link `index` of `ns` (it must be down). A name taken by another link is an
/// [`PodNetError::InvalidConfig`] naming it.
pub(crate) async fn rename_link(ns: &Ns, index: u32, name: &str) -> Result<(), PodNetError> {
    let msg = LinkUnspec::new_with_index(index).name(name.to_owned()).build();
    match ns.handle().link().set(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(EEXIST) => Err(PodNetError::InvalidConfig {
            field: "interface",
            value: format!("{name} already exists in {}", ns.path().display()),
        }),
        Err(e) => Err(netlink(format!("rename link {index} to {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_prefers_lower_number_of_same_stem_only() {
        assert_eq!(pick_primary(&[]), None);
        assert_eq!(pick_primary(&["eth1", "eth0"]), Some(1));
        assert_eq!(pick_primary(&["eth0", "eth1"]), Some(0));
        assert_eq!(pick_primary(&["ens5", "eth0"]), Some(0));
        assert_eq!(pick_primary(&["eth10", "eth2", "ens0"]), Some(1));
        assert_eq!(pick_primary(&["br-x", "eth0"]), Some(0));
    }

    #[test]
    fn mac_round_trip() {
        let mac = parse_mac("0A:58:0a:f4:01:07").unwrap();
        assert_eq!(format_mac(&mac), "0a:58:0a:f4:01:07");
        assert!(parse_mac("0a:58:0a:f4:01").is_none());
        assert!(parse_mac("0a:58:0a:f4:01:7").is_none());
        assert!(parse_mac("").is_none());
    }
}
