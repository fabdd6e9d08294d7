//! The three netlink enums of the pod-network JSON, spelled as upstream's `netops` package writes
//! and accepts them. Each has a zero value that upstream omits from the JSON (`omitempty`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares an enum that (de)serializes as one of a fixed set of lowercase names.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, zero = $zero:ident, is_zero = $is_zero:ident,
     { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, zero value first.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the JSON spelling (exact, lowercase).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)+ _ => None }
            }

            /// True for the zero value, which upstream leaves out of the JSON.
            pub fn $is_zero(&self) -> bool {
                *self == $name::$zero
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$zero
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::from_name(&text)
                    .filter(|v| v.accepted_on_read())
                    .ok_or_else(|| serde::de::Error::custom(concat!("unknown ", $what)))
            }
        }
    };
}

named_enum!(
    /// Route protocol (`protocol`). Upstream reads back only `static`, `boot`, `dhcp`, `kernel`.
    RouteProtocol, "route protocol", zero = Unspec, is_zero = is_unspec, {
        /// 0, omitted.
        Unspec => "unspec",
        /// RTPROT_KERNEL.
        Kernel => "kernel",
        /// RTPROT_BOOT.
        Boot => "boot",
        /// RTPROT_STATIC.
        Static => "static",
        /// RTPROT_DHCP.
        Dhcp => "dhcp",
    }
);

named_enum!(
    /// Route scope (`scope`).
    RouteScope, "route scope", zero = Universe, is_zero = is_universe, {
        /// 0, omitted.
        Universe => "universe",
        /// RT_SCOPE_SITE.
        Site => "site",
        /// RT_SCOPE_LINK.
        Link => "link",
        /// RT_SCOPE_HOST.
        Host => "host",
        /// RT_SCOPE_NOWHERE.
        Nowhere => "nowhere",
    }
);

named_enum!(
    /// Neighbor state (`state`, NUD_* flags).
    NeighborState, "neighbor state", zero = None, is_zero = is_none, {
        /// 0, omitted.
        None => "none",
        /// NUD_INCOMPLETE.
        Incomplete => "incomplete",
        /// NUD_REACHABLE.
        Reachable => "reachable",
        /// NUD_STALE.
        Stale => "stale",
        /// NUD_DELAY.
        Delay => "delay",
        /// NUD_PROBE.
        Probe => "probe",
        /// NUD_FAILED.
        Failed => "failed",
        /// NUD_NOARP.
        Noarp => "noarp",
        /// NUD_PERMANENT.
        Permanent => "permanent",
    }
);

impl RouteProtocol {
    /// Upstream's reader rejects `unspec` (it is never written: it is the omitted zero value).
    fn accepted_on_read(self) -> bool {
        self != RouteProtocol::Unspec
    }
}

impl RouteScope {
    fn accepted_on_read(self) -> bool {
        true
    }
}

impl NeighborState {
    fn accepted_on_read(self) -> bool {
        true
    }
}
