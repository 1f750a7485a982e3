module gossipmesh

go 1.26.8
