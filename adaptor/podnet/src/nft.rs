//! Conntrack bypass for the tunnel's UDP flow, written as nftables netlink messages (no `nft` or
//! `iptables` binary, no libnftnl). Each tunnel owns one table, `caa-vxlan-<vni>` (family `ip`),
//! with two base chains at the raw priority (-300, before conntrack at -200):
//!
//! ```text
//! output:     ip daddr <remote> meta l4proto udp udp dport <port> notrack
//! prerouting: ip saddr <remote> meta l4proto udp udp dport <port> notrack
//! ```
//!
//! Owning a whole table makes teardown exact (delete that table, nothing else) and idempotent,
//! and setup atomic: one batch re-creates the table from scratch.

use std::io;
use std::net::Ipv4Addr;

use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::PodNetError;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFPROTO_IPV4: u8 = 2;
const AF_UNSPEC: u8 = 0;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;

const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_META_L4PROTO: u32 = 16;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_IP_PRI_RAW: i32 = -300;
const NF_ACCEPT: u32 = 1;
const IPPROTO_UDP: u8 = 17;
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
const ENOENT: i32 = 2;

/// The nftables table a tunnel with this VNI owns.
pub fn table_name(vni: u32) -> String {
    format!("caa-vxlan-{vni}")
}

/// Installs (or re-installs) the bypass table for `remote`:`port`. Runs in the calling thread's
/// network namespace.
pub(crate) fn install(vni: u32, remote: Ipv4Addr, port: u16) -> Result<(), PodNetError> {
    let table = table_name(vni);
    let comment = format!("peerpod [vni:{vni}]");
    let mut b = Batch::new();
    // Create-then-delete-then-create in one transaction replaces a leftover table atomically.
    b.msg(NFT_MSG_NEWTABLE, NLM_F_CREATE, |m| m.str(NFTA_TABLE_NAME, &table));
    b.msg(NFT_MSG_DELTABLE, 0, |m| m.str(NFTA_TABLE_NAME, &table));
    b.msg(NFT_MSG_NEWTABLE, NLM_F_CREATE, |m| m.str(NFTA_TABLE_NAME, &table));
    for (chain, hook, addr_offset) in
        [("output", NF_INET_LOCAL_OUT, 16), ("prerouting", NF_INET_PRE_ROUTING, 12)]
    {
        b.msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE, |m| {
            m.str(NFTA_CHAIN_TABLE, &table);
            m.str(NFTA_CHAIN_NAME, chain);
            let hook_attr = m.nest(NFTA_CHAIN_HOOK);
            m.u32(NFTA_HOOK_HOOKNUM, hook);
            m.u32(NFTA_HOOK_PRIORITY, NF_IP_PRI_RAW as u32);
            m.end(hook_attr);
            m.u32(NFTA_CHAIN_POLICY, NF_ACCEPT);
            m.str(NFTA_CHAIN_TYPE, "filter");
        });
        b.msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, |m| {
            m.str(NFTA_RULE_TABLE, &table);
            m.str(NFTA_RULE_CHAIN, chain);
            let exprs = m.nest(NFTA_RULE_EXPRESSIONS);
            // ip saddr/daddr == remote
            m.payload(NFT_PAYLOAD_NETWORK_HEADER, addr_offset, 4);
            m.cmp_eq(&remote.octets());
            // meta l4proto udp
            m.expr("meta", |m| {
                m.u32(NFTA_META_DREG, NFT_REG_1);
                m.u32(NFTA_META_KEY, NFT_META_L4PROTO);
            });
            m.cmp_eq(&[IPPROTO_UDP]);
            // udp dport == port
            m.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
            m.cmp_eq(&port.to_be_bytes());
            m.expr("notrack", |_| {});
            m.end(exprs);
            let mut udata = vec![NFTNL_UDATA_RULE_COMMENT, (comment.len() + 1) as u8];
            udata.extend_from_slice(comment.as_bytes());
            udata.push(0);
            m.attr(NFTA_RULE_USERDATA, &udata);
        });
    }
    b.send()
        .map_err(|source| PodNetError::Nftables { op: format!("install table {table}"), source })
}

/// Deletes the bypass table of `vni`; a table already gone is fine. Runs in the calling
/// thread's network namespace.
pub(crate) fn remove(vni: u32) -> Result<(), PodNetError> {
    let table = table_name(vni);
    let mut b = Batch::new();
    b.msg(NFT_MSG_DELTABLE, 0, |m| m.str(NFTA_TABLE_NAME, &table));
    match b.send() {
        Err(e) if e.raw_os_error() == Some(ENOENT) => Ok(()),
        other => other.map_err(|source| PodNetError::Nftables {
            op: format!("delete table {table}"),
            source,
        }),
    }
}

/// One nfnetlink transaction: BATCH_BEGIN, the messages (each with ACK), BATCH_END.
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    acked: Vec<u32>,
}

impl Batch {
    fn new() -> Self {
        let mut b = Batch { buf: Vec::with_capacity(2048), seq: 0, acked: Vec::new() };
        b.raw(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, |_| {});
        b
    }

    fn msg(&mut self, kind: u16, flags: u16, body: impl FnOnce(&mut Attrs<'_>)) {
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        self.raw(ty, NLM_F_REQUEST | NLM_F_ACK | flags, NFPROTO_IPV4, body);
        self.acked.push(self.seq);
    }

    fn raw(&mut self, ty: u16, flags: u16, family: u8, body: impl FnOnce(&mut Attrs<'_>)) {
        self.seq += 1;
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version 0, res_id (big endian).
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
        body(&mut Attrs(&mut self.buf));
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Sends the batch and waits for every message's answer; the first refusal is the error.
    fn send(mut self) -> io::Result<()> {
        self.raw(NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, |_| {});
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let sent = sock.send(&self.buf, 0)?;
        if sent != self.buf.len() {
            return Err(io::Error::other("short write of an nftables batch"));
        }
        let mut pending = self.acked;
        while !pending.is_empty() {
            let (data, _) = sock.recv_from_full()?;
            for (seq, code) in acks(&data)? {
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                pending.retain(|s| *s != seq);
            }
        }
        Ok(())
    }
}

/// `(seq, error code)` of every NLMSG_ERROR in one datagram.
fn acks(data: &[u8]) -> io::Result<Vec<(u32, i32)>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply");
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= data.len() {
        let word = |o: usize| -> io::Result<[u8; 4]> {
            data.get(at + o..at + o + 4).and_then(|s| s.try_into().ok()).ok_or_else(bad)
        };
        let len = u32::from_ne_bytes(word(0)?) as usize;
        let ty = u16::from_ne_bytes([data[at + 4], data[at + 5]]);
        let seq = u32::from_ne_bytes(word(8)?);
        if len < 16 || at + len > data.len() {
            return Err(bad());
        }
        if ty == NLMSG_ERROR {
            out.push((seq, i32::from_ne_bytes(word(16)?)));
        }
        at += (len + 3) & !3;
    }
    Ok(out)
}

/// Appends netlink attributes (TLV, 4-byte aligned) to a message being built.
struct Attrs<'a>(&'a mut Vec<u8>);

impl Attrs<'_> {
    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn str(&mut self, ty: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v);
    }

    /// nftables integers are big endian.
    fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    fn nest(&mut self, ty: u16) -> usize {
        let start = self.0.len();
        self.0.extend_from_slice(&0u16.to_ne_bytes());
        self.0.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        start
    }

    fn end(&mut self, start: usize) {
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// One list element of a rule's expressions: name plus optional data.
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs<'_>)) {
        let elem = self.nest(NFTA_LIST_ELEM);
        self.str(NFTA_EXPR_NAME, name);
        let d = self.nest(NFTA_EXPR_DATA);
        data(self);
        if self.0.len() - d == 4 {
            self.0.truncate(d);
        } else {
            self.end(d);
        }
        self.end(elem);
    }

    /// `payload load <len>b @ <base> + <offset> => reg 1`.
    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |m| {
            m.u32(NFTA_PAYLOAD_DREG, NFT_REG_1);
            m.u32(NFTA_PAYLOAD_BASE, base);
            m.u32(NFTA_PAYLOAD_OFFSET, offset);
            m.u32(NFTA_PAYLOAD_LEN, len);
        });
    }

    /// `cmp eq reg 1 <value>`.
    fn cmp_eq(&mut self, value: &[u8]) {
        self.expr("cmp", |m| {
            m.u32(NFTA_CMP_SREG, NFT_REG_1);
            m.u32(NFTA_CMP_OP, NFT_CMP_EQ);
            let data = m.nest(NFTA_CMP_DATA);
            m.attr(NFTA_DATA_VALUE, value);
            m.end(data);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_aligned_and_nested_lengths_cover_children() {
        let mut buf = Vec::new();
        let mut a = Attrs(&mut buf);
        let n = a.nest(NFTA_CHAIN_HOOK);
        a.str(NFTA_TABLE_NAME, "ab");
        a.u32(NFTA_HOOK_PRIORITY, NF_IP_PRI_RAW as u32);
        a.end(n);
        // nest header 4 + "ab\0" attr (7, padded to 8) + u32 attr 8.
        assert_eq!(buf.len(), 20);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 20);
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), NFTA_CHAIN_HOOK | NLA_F_NESTED);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 7);
        assert_eq!(&buf[16..20], &(-300i32).to_be_bytes());
    }

    #[test]
    fn expression_without_data_has_no_data_attribute() {
        let mut buf = Vec::new();
        Attrs(&mut buf).expr("notrack", |_| {});
        // elem header 4 + name "notrack\0" (4 + 8).
        assert_eq!(buf.len(), 16);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 16);
    }

    #[test]
    fn batch_messages_carry_their_lengths_and_sequence_numbers() {
        let mut b = Batch::new();
        b.msg(NFT_MSG_DELTABLE, 0, |m| m.str(NFTA_TABLE_NAME, "t"));
        assert_eq!(b.acked, vec![2]);
        let first = u32::from_ne_bytes(b.buf[0..4].try_into().unwrap()) as usize;
        assert_eq!(first, 20);
        let second = &b.buf[first..];
        assert_eq!(u32::from_ne_bytes(second[0..4].try_into().unwrap()) as usize, second.len());
        assert_eq!(u16::from_ne_bytes([second[4], second[5]]), 0x0a02);
        assert_eq!(second[16], NFPROTO_IPV4);
    }

    #[test]
    fn acks_reads_error_codes_and_rejects_truncation() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&36u32.to_ne_bytes());
        msg.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&7u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&(-2i32).to_ne_bytes());
        msg.extend_from_slice(&[0; 16]);
        assert_eq!(acks(&msg).unwrap(), vec![(7, -2)]);
        assert!(acks(&msg[..30]).is_err());
    }
}
