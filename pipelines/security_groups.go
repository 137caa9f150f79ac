package pipelines

// The security-group stages (conntrack and rule tables) arrive with the
// security-group issue. Until then their tables exist, are named, and pass
// all intra-VPC traffic on: egress 20 → 25 and 30 → 40, ingress 50 → 70.

func (c *compiler) egressCt() { c.passThrough(TableEgressCt, TableRouterLocal) }

func (c *compiler) egressSg() { c.passThrough(TableEgressSg, TableL3Route) }

func (c *compiler) ingressCt() { c.passThrough(TableIngressCt, TableOutput) }
