module github.com/openvpc/openvpc

go 1.24.0

require (
	antrea.io/libOpenflow v0.15.0
	github.com/ovn-kubernetes/libovsdb v0.8.1
	github.com/sirupsen/logrus v1.9.3
	github.com/urfave/cli/v2 v2.27.7
	gopkg.in/yaml.v3 v3.0.1
)

replace antrea.io/libOpenflow => github.com/antrea-io/libOpenflow v0.15.0
