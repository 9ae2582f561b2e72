"""Developer tooling: toolchain checks, the Terraform CLI config, Lambda packaging and the local emulator."""
