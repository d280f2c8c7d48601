"""What the Docker provider does with the program's inputs, mirrored from its code.

pulumi-docker 5.2.0 bridges kreuzwerker/terraform-provider-docker; its container, network and
volume resources are that provider's, so their behaviour is in its Go code, not in Pulumi's:

- `canonical`: the form the provider reads an input back in; the program sends that form, so a
  second `pulumi up` finds nothing to change.
- `schema`: which inputs replace the resource on change, which are updated in place and which
  are only recorded; which the provider computes; the defaults it fills in.
- `diff`: the decision a `pulumi up` takes for one resource (same, update, replace), from the
  recorded state and the new inputs, as the provider and Pulumi's engine take it.

Components use the canonical forms; the tests' provider stand-in and the offline plan use all
three, so what they predict is what the provider does. Nothing here imports the program.
"""
