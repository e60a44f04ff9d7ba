# One Hetzner Cloud server per POP, an SSH key for the admin user and a
# firewall that lets in SSH from the configured CIDRs only (plus ICMP echo
# when asked): the agent only connects out (Kafka, its probe targets).

locals {
  # Nothing secret: the admin user with its public key. Everything else
  # (packages, config, credentials) is Ansible's job.
  cloud_init = "#cloud-config\n${yamlencode({
    users = [{
      name                = var.admin_user
      groups              = ["sudo"]
      shell               = "/bin/bash"
      sudo                = "ALL=(ALL) NOPASSWD:ALL"
      lock_passwd         = true
      ssh_authorized_keys = [var.ssh_public_key]
    }]
    disable_root   = true
    ssh_pwauth     = false
    package_update = true
    packages       = ["python3"]
  })}"

  ssh_rule = {
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.ssh_allowed_cidrs
    description = "SSH from the admin networks"
  }
  icmp_rule = {
    direction   = "in"
    protocol    = "icmp"
    port        = null
    source_ips  = ["0.0.0.0/0", "::/0"]
    description = "ICMP echo to the POP"
  }
  firewall_rules = concat([local.ssh_rule], var.allow_icmp_echo ? [local.icmp_rule] : [])
}

resource "hcloud_ssh_key" "admin" {
  name       = var.ssh_key_name
  public_key = var.ssh_public_key
  labels     = var.labels
}

resource "hcloud_firewall" "pop" {
  name   = var.firewall_name
  labels = var.labels

  dynamic "rule" {
    for_each = local.firewall_rules
    content {
      direction   = rule.value.direction
      protocol    = rule.value.protocol
      port        = rule.value.port
      source_ips  = rule.value.source_ips
      description = rule.value.description
    }
  }
}

resource "hcloud_server" "pop" {
  for_each = var.pops

  name         = each.key
  location     = each.value.location
  server_type  = each.value.server_type
  image        = each.value.image
  labels       = merge(var.labels, { "netprobe-pop" = each.key }, each.value.labels)
  ssh_keys     = [hcloud_ssh_key.admin.id]
  firewall_ids = [hcloud_firewall.pop.id]
  user_data    = local.cloud_init

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }
}
