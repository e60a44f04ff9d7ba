# The inventory the example writes, from the module's outputs, with mocked
# providers: no API token, no servers, no file written.

mock_provider "hcloud" {
  # hcloud IDs are numbers in string attributes (firewall_ids takes numbers).
  mock_resource "hcloud_firewall" {
    defaults = { id = "1001" }
  }
  mock_resource "hcloud_ssh_key" {
    defaults = { id = "1002" }
  }
}
mock_provider "local" {}

variables {
  hcloud_token      = "mock"
  ssh_public_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm2pGZk0uAq3Qf1a2mH3nA5v7dL1e6mJkq9b0c1d2e3 admin@example"
  ssh_allowed_cidrs = ["198.51.100.0/24"]
}

override_module {
  target = module.pop
  outputs = {
    names = ["pop-fsn-01", "pop-hel-01"]
    servers = {
      "pop-fsn-01" = { ipv4 = "203.0.113.10", ipv6 = "2001:db8::10", location = "fsn1" }
      "pop-hel-01" = { ipv4 = "203.0.113.11", ipv6 = "2001:db8::11", location = "hel1" }
    }
  }
}

run "inventory_lists_every_pop_with_address_and_location" {
  command = plan

  assert {
    condition     = local_file.inventory.content == file("${path.module}/tests/expected-inventory.yml")
    error_message = "inventory differs from tests/expected-inventory.yml"
  }
  assert {
    condition = yamldecode(local_file.inventory.content).all.children.probes.hosts == {
      "pop-fsn-01" = { ansible_host = "203.0.113.10", netprobe_location = "Falkenstein, DE" }
      "pop-hel-01" = { ansible_host = "203.0.113.11", netprobe_location = "Helsinki, FI" }
    }
    error_message = "probes group: one host per POP with ansible_host and netprobe_location"
  }
}
