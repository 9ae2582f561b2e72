"""Developer tooling: toolchain checks, the Terraform CLI config, releases, the local platform and benchmarks' helpers.

Tooling may import the product (patternwatch_infra, lambda_src's packages); the product never imports
tooling (tests/infra/test_import_direction.py holds that line).
"""
