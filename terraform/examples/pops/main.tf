# Example root: the POPs of terraform/modules/pop on Hetzner Cloud, and the
# Ansible inventory written from its outputs (ansible/inventory/hosts.yml
# shows the shape). Usage: docs/deployment.md.

terraform {
  required_version = ">= 1.6"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = ">= 1.52.0, < 2.0.0"
    }
    local = {
      source  = "hashicorp/local"
      version = ">= 1.4.0"
    }
  }
}

variable "hcloud_token" {
  description = "Hetzner Cloud API token (read+write). Pass it as TF_VAR_hcloud_token, never in a file."
  type        = string
  sensitive   = true
}

variable "pops" {
  description = "POPs to create (see modules/pop variable pops) and, per POP, the human location the agent reports."
  type = map(object({
    location     = string
    display_name = string
    server_type  = optional(string, "cx22")
    image        = optional(string, "debian-12")
  }))
  default = {
    "pop-fsn-01" = { location = "fsn1", display_name = "Falkenstein, DE" }
    "pop-hel-01" = { location = "hel1", display_name = "Helsinki, FI" }
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key of the admin user."
  type        = string
}

variable "ssh_allowed_cidrs" {
  description = "Where SSH may come from (the Ansible controller's networks)."
  type        = list(string)
}

variable "admin_user" {
  description = "Admin user on the POPs; Ansible connects as it."
  type        = string
  default     = "netprobe"
}

variable "inventory_path" {
  description = "Where the Ansible inventory is written."
  type        = string
  default     = "../../../ansible/inventory/pops.yml"
}

provider "hcloud" {
  token = var.hcloud_token
}

module "pop" {
  source = "../../modules/pop"

  pops = {
    for name, p in var.pops : name => {
      location    = p.location
      server_type = p.server_type
      image       = p.image
    }
  }
  ssh_public_key    = var.ssh_public_key
  ssh_allowed_cidrs = var.ssh_allowed_cidrs
  admin_user        = var.admin_user
}

locals {
  inventory = templatefile("${path.module}/inventory.yml.tftpl", {
    admin_user = var.admin_user
    pops = {
      for name, s in module.pop.servers : name => {
        ipv4         = s.ipv4
        display_name = var.pops[name].display_name
      }
    }
  })
}

resource "local_file" "inventory" {
  filename = "${path.module}/${var.inventory_path}"
  content  = local.inventory
}

output "pops" {
  description = "Per POP: ipv4, ipv6, location."
  value       = module.pop.servers
}

output "inventory_path" {
  description = "The Ansible inventory written."
  value       = local_file.inventory.filename
}
