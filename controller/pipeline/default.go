package pipeline

// Default is vpcflow's pipeline, in packet order.
func Default() *Pipeline {
	p, err := New(
		NewClassifier(),
		NewDHCP(),
		NewSpoofGuard(),
		NewGatewayPing(),
		NewMetadata(),
		NewAliyunService(),
		NewARPResponder(),
		NewSGEgress(),
		NewNATIn(),
		NewL3Forwarding(),
		NewNATOut(),
		NewTunnel(),
		NewSGIngress(),
		NewOutput(),
		NewLiveTrace(),
	)
	if err != nil {
		panic(err) // the declarations are constant; TestDefaultPipeline checks them
	}
	return p
}
