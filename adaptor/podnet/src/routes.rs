//! Routes and neighbours between their netlink form and apf.json's `routes`/`neighbors`
//! (`caa_userdata::{Route, Neighbor}`): read from the worker's pod netns, re-added in the VM.

use std::net::{IpAddr, Ipv4Addr};

use caa_userdata::{Neighbor, NeighborState, Route, RouteProtocol, RouteScope};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourState as NlNeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteMessage, RouteProtocol as NlProtocol, RouteScope as NlScope,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::error::netlink;
use crate::nl::{format_mac, link_name, parse_mac, route_dst, route_gateway, route_oif};
use crate::{Ipv4Cidr, PodNetError};

/// The apf.json form of a main-table route, for the protocols upstream copies (kernel, boot,
/// static, dhcp); `None` for the others.
pub(crate) fn to_route(r: &RouteMessage, links: &[LinkMessage]) -> Option<Route> {
    let protocol = match r.header.protocol {
        NlProtocol::Kernel => RouteProtocol::Kernel,
        NlProtocol::Boot => RouteProtocol::Boot,
        NlProtocol::Static => RouteProtocol::Static,
        NlProtocol::Dhcp => RouteProtocol::Dhcp,
        _ => return None,
    };
    let scope = match r.header.scope {
        NlScope::Universe => RouteScope::Universe,
        NlScope::Site => RouteScope::Site,
        NlScope::Link => RouteScope::Link,
        NlScope::Host => RouteScope::Host,
        NlScope::NoWhere => RouteScope::Nowhere,
        _ => return None,
    };
    let dev = route_oif(r)
        .and_then(|i| links.iter().find(|l| l.header.index == i))
        .and_then(link_name)
        .unwrap_or_default()
        .to_owned();
    Some(Route {
        dst: route_dst(r).to_string(),
        gw: route_gateway(r).map(|g| g.to_string()).unwrap_or_default(),
        dev,
        protocol,
        scope,
    })
}

/// PERMANENT IPv4 neighbour entries on the link `index` called `dev`.
pub(crate) async fn permanent_neighbors(
    h: &Handle,
    index: u32,
    dev: &str,
) -> Result<Vec<Neighbor>, PodNetError> {
    let all: Vec<_> = h
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Inet)
        .execute()
        .try_collect()
        .await
        .map_err(|e| netlink("list neighbours", e))?;
    let mut out = Vec::new();
    for n in all {
        if n.header.ifindex != index || n.header.state != NlNeighbourState::Permanent {
            continue;
        }
        let ip = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let mac = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(m) => Some(format_mac(m)),
            _ => None,
        });
        if let Some(ip) = ip {
            out.push(Neighbor {
                ip: ip.to_string(),
                hw_addr: mac.unwrap_or_default(),
                dev: dev.to_owned(),
                state: NeighborState::Permanent,
            });
        }
    }
    Ok(out)
}

/// A route as the VM adds it: destination, optional gateway, output link, protocol and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteSpec {
    pub(crate) dst: Ipv4Cidr,
    pub(crate) gw: Option<Ipv4Addr>,
    pub(crate) dev: String,
    pub(crate) protocol: RouteProtocol,
    pub(crate) scope: RouteScope,
}

impl RouteSpec {
    /// Parses an apf.json route; an empty `dev` means the pod interface, an empty or zero
    /// `dst` the default route.
    pub(crate) fn parse(r: &Route, pod_if: &str) -> Result<Self, PodNetError> {
        let bad = |field| PodNetError::InvalidConfig { field, value: format!("{r:?}") };
        let dst = if r.dst.is_empty() {
            Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).ok_or_else(|| bad("routes.dst"))?
        } else {
            r.dst.parse::<Ipv4Cidr>().map_err(|_| bad("routes.dst"))?.network()
        };
        let gw = match r.gw.as_str() {
            "" => None,
            g => match g.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) if !v4.is_unspecified() => Some(v4),
                Ok(IpAddr::V4(_)) => None,
                _ => return Err(bad("routes.gw")),
            },
        };
        let dev = if r.dev.is_empty() { pod_if.to_owned() } else { r.dev.clone() };
        Ok(RouteSpec { dst, gw, dev, protocol: r.protocol, scope: r.scope })
    }

    /// The netlink message for link `oif`.
    pub(crate) fn message(&self, oif: u32) -> RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(self.dst.addr(), self.dst.prefix())
            .output_interface(oif)
            .protocol(match self.protocol {
                RouteProtocol::Unspec => NlProtocol::Unspec,
                RouteProtocol::Kernel => NlProtocol::Kernel,
                RouteProtocol::Boot => NlProtocol::Boot,
                RouteProtocol::Static => NlProtocol::Static,
                RouteProtocol::Dhcp => NlProtocol::Dhcp,
            })
            .scope(match self.scope {
                RouteScope::Universe => NlScope::Universe,
                RouteScope::Site => NlScope::Site,
                RouteScope::Link => NlScope::Link,
                RouteScope::Host => NlScope::Host,
                RouteScope::Nowhere => NlScope::NoWhere,
            });
        if let Some(gw) = self.gw {
            b = b.gateway(gw);
        }
        b.build()
    }
}

/// Routes in the order the VM adds them: those without a gateway (link scope) first, so the
/// gateways of the others are reachable when they are added.
pub(crate) fn ordered(routes: Vec<RouteSpec>) -> Vec<RouteSpec> {
    let (direct, via): (Vec<_>, Vec<_>) = routes.into_iter().partition(|r| r.gw.is_none());
    direct.into_iter().chain(via).collect()
}

/// An apf.json neighbour as the VM adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeighborSpec {
    pub(crate) ip: Ipv4Addr,
    pub(crate) mac: Vec<u8>,
    pub(crate) dev: String,
    pub(crate) state: NlNeighbourState,
}

impl NeighborSpec {
    /// Parses an apf.json neighbour; an empty `dev` means the pod interface.
    pub(crate) fn parse(n: &Neighbor, pod_if: &str) -> Result<Self, PodNetError> {
        let bad = |field| PodNetError::InvalidConfig { field, value: format!("{n:?}") };
        let ip = n.ip.parse::<Ipv4Addr>().map_err(|_| bad("neighbors.ip"))?;
        let mac = parse_mac(&n.hw_addr).ok_or_else(|| bad("neighbors.hw-addr"))?;
        let state = match n.state {
            NeighborState::None | NeighborState::Permanent => NlNeighbourState::Permanent,
            NeighborState::Incomplete => NlNeighbourState::Incomplete,
            NeighborState::Reachable => NlNeighbourState::Reachable,
            NeighborState::Stale => NlNeighbourState::Stale,
            NeighborState::Delay => NlNeighbourState::Delay,
            NeighborState::Probe => NlNeighbourState::Probe,
            NeighborState::Failed => NlNeighbourState::Failed,
            NeighborState::Noarp => NlNeighbourState::Noarp,
        };
        let dev = if n.dev.is_empty() { pod_if.to_owned() } else { n.dev.clone() };
        Ok(NeighborSpec { ip, mac, dev, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, gw: &str, dev: &str) -> Route {
        Route {
            dst: dst.to_owned(),
            gw: gw.to_owned(),
            dev: dev.to_owned(),
            protocol: RouteProtocol::Boot,
            scope: RouteScope::Universe,
        }
    }

    #[test]
    fn route_parse_defaults_and_ordering() {
        let specs = vec![
            RouteSpec::parse(&route("0.0.0.0/0", "10.244.1.1", "eth0"), "eth0").unwrap(),
            RouteSpec::parse(&route("10.244.1.0/24", "", ""), "eth0").unwrap(),
            RouteSpec::parse(&route("", "", "eth0"), "eth0").unwrap(),
        ];
        assert_eq!(specs[1].dev, "eth0");
        assert_eq!(specs[2].dst.to_string(), "0.0.0.0/0");
        let order: Vec<_> = ordered(specs).into_iter().map(|r| r.gw.is_some()).collect();
        assert_eq!(order, vec![false, false, true]);
        // Host bits are cleared: the kernel refuses a prefix with them set.
        let s = RouteSpec::parse(&route("10.244.1.7/24", "", ""), "eth0").unwrap();
        assert_eq!(s.dst.to_string(), "10.244.1.0/24");
    }

    #[test]
    fn malformed_routes_and_neighbours_name_the_field() {
        let e = RouteSpec::parse(&route("10.0.0.0/40", "", ""), "eth0").unwrap_err();
        assert!(e.to_string().contains("routes.dst"), "{e}");
        let e = RouteSpec::parse(&route("10.0.0.0/8", "fe80::1", ""), "eth0").unwrap_err();
        assert!(e.to_string().contains("routes.gw"), "{e}");
        let n = Neighbor { ip: "10.0.0.1".into(), hw_addr: "zz".into(), ..Default::default() };
        let e = NeighborSpec::parse(&n, "eth0").unwrap_err();
        assert!(e.to_string().contains("neighbors.hw-addr"), "{e}");
    }
}
