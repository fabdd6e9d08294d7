//! Integration tests of the forwarder binary's library: the pod network it builds from apf.json
//! before listening, against real namespaces (root; `CAA_TEST_NETNS=1`, else a skip line).

mod podnet;
