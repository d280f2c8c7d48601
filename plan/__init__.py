"""The offline plan: what a change does to each stack, computed from the program itself.

`recorder` runs the program under Pulumi's mocks and records its resource graph (every tool
that works on the graph uses it). The rest compares the graphs of two revisions the way
`pulumi up` with the Docker provider would act, and reports it for a pull request.
"""
