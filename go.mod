module github.com/vpcflow/vpcflow

go 1.26.8

require (
	github.com/contiv/libOpenflow v0.0.0-20210609050114-d967b14cc688 // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/ovn-kubernetes/libovsdb v0.8.1 // indirect
	go.etcd.io/bbolt v1.4.3 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
)
