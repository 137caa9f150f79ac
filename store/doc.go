// Package store keeps OpenVPC's tenant intent durably in etcd, and serves it
// to the controller as a Source.
//
// # Layout
//
// Every key lives under a prefix (default "/openvpc/v1/"):
//
//	<prefix>account/<name>    JSON model.Account
//	<prefix>vpc/<name>        JSON model.VPC (VNI pinned)
//	<prefix>subnet/<name>     JSON model.Subnet
//	<prefix>nic/<name>        JSON model.NIC (IP, MAC, port key pinned)
//	<prefix>host/<name>       JSON model.Host
//	<prefix>security_group/<name>  JSON model.SecurityGroup (rule IDs pinned;
//	                          VPCs' default groups too, created and deleted with them)
//	<prefix>route_table/<name>  JSON model.RouteTable (VPCs' main tables too)
//	<prefix>peering/<name>    JSON model.Peering
//	<prefix>internet_gateway/<name>  JSON model.InternetGateway
//	<prefix>public_ip_pool/<name>    JSON model.PublicIPPool
//	<prefix>public_ip/<name>  JSON model.PublicIP (address pinned once allocated)
//	<prefix>settings/deployment  JSON model.Settings (the one settings object;
//	                          absent when empty: the defaults)
//	<prefix>meta/generation   "<counter> <commit id>", rewritten by every policy commit
//	<prefix>meta/admin-token  id of the first admin token (created once)
//	<prefix>tokens/<sha256>   JSON token record; the secret itself is never stored
//
// # Consistency
//
// Update reads the whole prefix in one range read (one revision), applies the
// caller's change to a copy, validates it with model.Build and commits only
// the keys that changed in one etcd transaction guarded by the mod revision
// of the generation key. A concurrent commit makes the transaction fail; the
// change is then re-run on a fresh read, a bounded number of times. A commit
// whose answer was lost (member killed, leader change, timeout) is looked up
// by its commit id in the generation key's history before fn runs again, so
// it is neither applied twice nor reported as failed when it landed.
//
// # Limits
//
// Reading and validating the whole policy per write is the scaling limit:
// cost is linear in the size of the policy (tens of thousands of objects are
// fine; millions are not). A single Update is one etcd transaction, so it is
// bounded by the cluster's --max-txn-ops (etcd default 128!) and
// --max-request-bytes (default 1.5 MiB). The embedded etcd raises both (see
// MaxTxnOps, MaxRequestBytes); an external cluster must be started with
// similar values for bulk changes.
package store
