variable "pops" {
  description = "POP VMs to create: name (becomes the server name and the agent's probe_id) -> where and what."
  type = map(object({
    location    = string                   # Hetzner location: fsn1, nbg1, hel1, ash, hil, sin
    server_type = optional(string, "cx22") # smallest shared x86 type is plenty for a probe
    image       = optional(string, "debian-12")
    labels      = optional(map(string), {})
  }))
  validation {
    condition     = alltrue([for name in keys(var.pops) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", name))])
    error_message = "POP names must be valid host names (lower-case letters, digits and '-'), e.g. pop-fsn-01."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key of the admin user (the key Ansible connects with)."
  type        = string
  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key line (ssh-ed25519 AAAA...)."
  }
}

variable "ssh_key_name" {
  description = "Name of the hcloud_ssh_key holding ssh_public_key."
  type        = string
  default     = "netprobe-admin"
}

variable "admin_user" {
  description = "Admin user cloud-init creates (SSH key only, passwordless sudo); Ansible logs in as it."
  type        = string
  default     = "netprobe"
}

variable "ssh_allowed_cidrs" {
  description = "Source CIDRs allowed to reach SSH (22/tcp); nothing else is allowed in. The agent needs no inbound port."
  type        = list(string)
  validation {
    condition     = length(var.ssh_allowed_cidrs) > 0 && alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "ssh_allowed_cidrs needs at least one CIDR such as 198.51.100.0/24 or 2001:db8::/32."
  }
}

variable "allow_icmp_echo" {
  description = "Also allow inbound ICMP (echo) from anywhere, so the POP itself can be pinged."
  type        = bool
  default     = false
}

variable "firewall_name" {
  description = "Name of the hcloud_firewall shared by the POP servers."
  type        = string
  default     = "netprobe-pop"
}

variable "labels" {
  description = "Labels put on every server, the firewall and the SSH key (merged under each POP's own labels)."
  type        = map(string)
  default     = { "app" = "netprobe" }
}
