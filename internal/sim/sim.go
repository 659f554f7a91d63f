// Package sim is the transaction simulator of the Fraud Detection Handbook (Le Borgne et
// al., chapter 3), written as a stream: it yields card transactions in time order, day by
// day, with the handbook's three fraud scenarios, deterministically for a seed. See
// ../shared/fraud-simulator.md in the project for the parameters.
//
// One deliberate difference: scenario 3 marks each transaction of a compromised customer
// as fraud with probability 1/3 as it is generated, where the handbook picks exactly a third
// of the window's transactions after the fact; a stream cannot look ahead.
package sim

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// Config are the simulator parameters; the zero value of a field takes the handbook's.
type Config struct {
	Customers int     // 5000
	Terminals int     // 10000
	Radius    float64 // 5
	Start     time.Time
	Seed      uint64
}

func (c *Config) defaults() {
	if c.Customers == 0 {
		c.Customers = 5000
	}
	if c.Terminals == 0 {
		c.Terminals = 10000
	}
	if c.Radius == 0 {
		c.Radius = 5
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2018, 4, 1, 0, 0, 0, 0, time.UTC)
	}
}

// Tx is one transaction with its label.
type Tx struct {
	ID         int64
	Time       time.Time
	CustomerID int64
	TerminalID int64
	Amount     float64
	Fraud      int
	Scenario   int
}

type customer struct {
	meanAmount, stdAmount, meanPerDay float64
	terminals                         []int32
}

// Generator yields transactions in time order. Not safe for concurrent use.
type Generator struct {
	cfg        Config
	rng        *rand.Rand
	customers  []customer
	day        int
	buf        []Tx
	pos        int
	nextID     int64
	termUntil  map[int64]int // compromised terminal -> last day (exclusive)
	custUntil  map[int64]int // compromised customer -> last day (exclusive)
	fraudDays  int
	scratchDay []Tx
	// compromises are the fraud scenarios started since the last TakeCompromises
	// (tables.go turns them into reference-table updates).
	compromises []Compromise
}

// Compromise is a fraud scenario starting: terminal (scenario 2) or customer (scenario 3)
// ID compromised from day Day until day Until (exclusive).
type Compromise struct {
	Terminal   bool
	ID         int64
	Day, Until int
}

// TakeCompromises returns the scenarios started since the last call.
func (g *Generator) TakeCompromises() []Compromise {
	c := g.compromises
	g.compromises = nil
	return c
}

// New builds the customer and terminal profiles.
func New(cfg Config) *Generator {
	cfg.defaults()
	g := &Generator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		termUntil: map[int64]int{},
		custUntil: map[int64]int{},
		fraudDays: 182,
	}
	type pt struct{ x, y float64 }
	cust := make([]pt, cfg.Customers)
	g.customers = make([]customer, cfg.Customers)
	for i := range g.customers {
		cust[i] = pt{g.rng.Float64() * 100, g.rng.Float64() * 100}
		mean := 5 + g.rng.Float64()*95
		g.customers[i] = customer{meanAmount: mean, stdAmount: mean / 2, meanPerDay: g.rng.Float64() * 4}
	}
	// Terminals on a grid of cells of the radius, so each customer checks only the 3x3
	// cells around it.
	cell := cfg.Radius
	n := int(math.Ceil(100/cell)) + 1
	grid := make([][]int32, n*n)
	term := make([]pt, cfg.Terminals)
	for i := range term {
		term[i] = pt{g.rng.Float64() * 100, g.rng.Float64() * 100}
		cx, cy := int(term[i].x/cell), int(term[i].y/cell)
		grid[cy*n+cx] = append(grid[cy*n+cx], int32(i))
	}
	for i, c := range cust {
		cx, cy := int(c.x/cell), int(c.y/cell)
		var ts []int32
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				x, y := cx+dx, cy+dy
				if x < 0 || y < 0 || x >= n || y >= n {
					continue
				}
				for _, t := range grid[y*n+x] {
					if math.Hypot(term[t].x-c.x, term[t].y-c.y) < cfg.Radius {
						ts = append(ts, t)
					}
				}
			}
		}
		sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
		g.customers[i].terminals = ts
	}
	return g
}

// Next returns the next transaction in time order. The stream does not end: after the
// handbook's 183 days it goes on generating days (fraud scenarios stop after day 181, as in
// the handbook, so long runs should stay within 183 days).
func (g *Generator) Next() Tx {
	for g.pos >= len(g.buf) {
		g.generateDay()
	}
	tx := g.buf[g.pos]
	g.pos++
	return tx
}

// Day is the day index of the transactions Next is returning (0 for the start date).
func (g *Generator) Day() int { return g.day - 1 }

func (g *Generator) generateDay() {
	d := g.day
	g.day++
	dayStart := g.cfg.Start.AddDate(0, 0, d)
	txs := g.scratchDay[:0]
	for ci := range g.customers {
		c := &g.customers[ci]
		if len(c.terminals) == 0 {
			continue
		}
		k := poisson(g.rng, c.meanPerDay)
		for j := 0; j < k; j++ {
			sec := math.Round(g.rng.NormFloat64()*20000 + 43200)
			if sec <= 0 || sec >= 86400 {
				continue
			}
			amount := g.rng.NormFloat64()*c.stdAmount + c.meanAmount
			if amount < 0 {
				amount = g.rng.Float64() * 2 * c.meanAmount
			}
			amount = math.Round(amount*100) / 100
			t := c.terminals[g.rng.IntN(len(c.terminals))]
			txs = append(txs, Tx{
				Time:       dayStart.Add(time.Duration(sec) * time.Second),
				CustomerID: int64(ci),
				TerminalID: int64(t),
				Amount:     amount,
			})
		}
	}
	sort.SliceStable(txs, func(a, b int) bool { return txs[a].Time.Before(txs[b].Time) })

	if d < g.fraudDays {
		// Scenario 2: two terminals compromised for 28 days from today.
		for i := 0; i < 2; i++ {
			id := int64(g.rng.IntN(g.cfg.Terminals))
			g.termUntil[id] = d + 28
			g.compromises = append(g.compromises, Compromise{Terminal: true, ID: id, Day: d, Until: d + 28})
		}
		// Scenario 3: three customers compromised for 14 days from today.
		for i := 0; i < 3; i++ {
			id := int64(g.rng.IntN(g.cfg.Customers))
			g.custUntil[id] = d + 14
			g.compromises = append(g.compromises, Compromise{ID: id, Day: d, Until: d + 14})
		}
	}
	for i := range txs {
		tx := &txs[i]
		tx.ID = g.nextID
		g.nextID++
		if d >= g.fraudDays {
			continue
		}
		if tx.Amount > 220 {
			tx.Fraud, tx.Scenario = 1, 1
		}
		if until, ok := g.termUntil[tx.TerminalID]; ok && d < until {
			tx.Fraud, tx.Scenario = 1, 2
		}
		if until, ok := g.custUntil[tx.CustomerID]; ok && d < until && g.rng.IntN(3) == 0 {
			tx.Amount = math.Round(tx.Amount*5*100) / 100
			tx.Fraud, tx.Scenario = 1, 3
		}
	}
	g.scratchDay = txs
	g.buf = append(g.buf[:0], txs...)
	g.pos = 0
}

// poisson draws from Poisson(lambda) by Knuth's method (lambda <= 4 here).
func poisson(r *rand.Rand, lambda float64) int {
	l := math.Exp(-lambda)
	k := 0
	p := 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// AppendEvent appends the event JSON of DESIGN.md (no label fields).
func (tx *Tx) AppendEvent(dst []byte) []byte {
	dst = tx.appendIdentity(dst)
	dst = append(dst, `,"tx_amount":`...)
	dst = strconv.AppendFloat(dst, tx.Amount, 'f', 2, 64)
	return append(dst, '}')
}

// appendIdentity opens the JSON object of an event or a label with the fields both carry.
func (tx *Tx) appendIdentity(dst []byte) []byte {
	dst = append(dst, `{"transaction_id":`...)
	dst = strconv.AppendInt(dst, tx.ID, 10)
	dst = append(dst, `,"tx_datetime":"`...)
	dst = tx.Time.UTC().AppendFormat(dst, time.RFC3339)
	dst = append(dst, `","customer_id":`...)
	dst = strconv.AppendInt(dst, tx.CustomerID, 10)
	dst = append(dst, `,"terminal_id":`...)
	return strconv.AppendInt(dst, tx.TerminalID, 10)
}

// AppendLabel appends the label JSON of DESIGN.md for transactions.labels.
func (tx *Tx) AppendLabel(dst []byte) []byte {
	dst = tx.appendIdentity(dst)
	dst = append(dst, `,"tx_fraud":`...)
	dst = strconv.AppendInt(dst, int64(tx.Fraud), 10)
	dst = append(dst, `,"tx_fraud_scenario":`...)
	dst = strconv.AppendInt(dst, int64(tx.Scenario), 10)
	return append(dst, '}')
}

// Key is the record key: the customer id in decimal.
func (tx *Tx) Key() []byte { return strconv.AppendInt(nil, tx.CustomerID, 10) }
