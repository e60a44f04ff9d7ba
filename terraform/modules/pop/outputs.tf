output "names" {
  description = "POP server names (the agents' probe_id)."
  value       = sort(keys(hcloud_server.pop))
}

output "servers" {
  description = "Per POP: ipv4, ipv6 and location (Hetzner location name)."
  value = {
    for name, s in hcloud_server.pop : name => {
      ipv4     = s.ipv4_address
      ipv6     = s.ipv6_address
      location = s.location
    }
  }
}

output "firewall_id" {
  description = "ID of the POP firewall."
  value       = hcloud_firewall.pop.id
}

output "cloud_init" {
  description = "The cloud-init user data every POP boots with (no secrets)."
  value       = local.cloud_init
}
