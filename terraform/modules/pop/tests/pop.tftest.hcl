# Plan-only tests with a mocked hcloud provider: no API token, no servers.

mock_provider "hcloud" {
  # hcloud IDs are numbers in string attributes (firewall_ids takes numbers).
  mock_resource "hcloud_firewall" {
    defaults = { id = "1001" }
  }
  mock_resource "hcloud_ssh_key" {
    defaults = { id = "1002" }
  }
}

variables {
  pops = {
    "pop-fsn-01" = { location = "fsn1" }
    "pop-hel-01" = { location = "hel1", server_type = "cx32", labels = { "tier" = "edge" } }
  }
  ssh_public_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm2pGZk0uAq3Qf1a2mH3nA5v7dL1e6mJkq9b0c1d2e3 admin@example"
  ssh_allowed_cidrs = ["198.51.100.0/24", "2001:db8::/32"]
}

run "one_server_per_pop" {
  command = plan

  assert {
    condition     = length(hcloud_server.pop) == 2
    error_message = "expected one server per POP"
  }
  assert {
    condition     = hcloud_server.pop["pop-fsn-01"].location == "fsn1" && hcloud_server.pop["pop-fsn-01"].server_type == "cx22"
    error_message = "pop-fsn-01 must be a cx22 in fsn1 (the default server_type)"
  }
  assert {
    condition     = hcloud_server.pop["pop-hel-01"].server_type == "cx32" && hcloud_server.pop["pop-hel-01"].image == "debian-12"
    error_message = "pop-hel-01 must be a cx32 with the default image debian-12"
  }
  assert {
    condition = hcloud_server.pop["pop-hel-01"].labels == tomap({
      "app" = "netprobe", "netprobe-pop" = "pop-hel-01", "tier" = "edge"
    })
    error_message = "labels: module labels, the POP name and the POP's own labels"
  }
  assert {
    condition     = output.names == tolist(["pop-fsn-01", "pop-hel-01"])
    error_message = "names output lists the POPs"
  }
}

run "firewall_allows_only_ssh_from_the_admin_cidrs" {
  command = plan

  assert {
    condition     = length(hcloud_firewall.pop.rule) == 1
    error_message = "exactly one inbound rule when ICMP echo is off"
  }
  assert {
    condition = (
      one(hcloud_firewall.pop.rule).direction == "in" &&
      one(hcloud_firewall.pop.rule).protocol == "tcp" &&
      one(hcloud_firewall.pop.rule).port == "22" &&
      sort(one(hcloud_firewall.pop.rule).source_ips) == tolist(["198.51.100.0/24", "2001:db8::/32"]) &&
      length(coalesce(one(hcloud_firewall.pop.rule).destination_ips, [])) == 0
    )
    error_message = "the one rule: 22/tcp in from ssh_allowed_cidrs"
  }
}

run "icmp_echo_is_optional" {
  command = plan

  variables {
    allow_icmp_echo = true
  }

  assert {
    condition = length(hcloud_firewall.pop.rule) == 2 && contains(
      [for r in hcloud_firewall.pop.rule : "${r.direction}/${r.protocol}/${join(",", sort(r.source_ips))}"],
      "in/icmp/0.0.0.0/0,::/0"
    )
    error_message = "ICMP echo in from anywhere when allow_icmp_echo = true"
  }
}

run "cloud_init_creates_the_admin_user_and_nothing_secret" {
  command = plan

  assert {
    condition     = startswith(hcloud_server.pop["pop-fsn-01"].user_data, "#cloud-config\n")
    error_message = "user_data must be a cloud-config document"
  }
  assert {
    condition = yamldecode(hcloud_server.pop["pop-fsn-01"].user_data).users == [{
      name                = "netprobe"
      groups              = ["sudo"]
      shell               = "/bin/bash"
      sudo                = "ALL=(ALL) NOPASSWD:ALL"
      lock_passwd         = true
      ssh_authorized_keys = [var.ssh_public_key]
    }]
    error_message = "cloud-init creates exactly the admin user, key-only"
  }
  assert {
    condition     = yamldecode(hcloud_server.pop["pop-fsn-01"].user_data).ssh_pwauth == false
    error_message = "password SSH logins are off"
  }
  assert {
    condition     = length(regexall("\"(password|passwd|plain_text_passwd|hashed_passwd|chpasswd)\":|(?i)token|secret|PRIVATE KEY", hcloud_server.pop["pop-fsn-01"].user_data)) == 0
    error_message = "cloud-init must carry no secret"
  }
}

run "ssh_cidrs_are_validated" {
  command = plan

  variables {
    ssh_allowed_cidrs = ["not-a-cidr"]
  }

  expect_failures = [var.ssh_allowed_cidrs]
}
