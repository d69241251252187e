# The Vagrant QA lab's machines, made from the lab inventory (inventories/lab: hosts.yml and
# group_vars/all/network.yml) and the Vagrant settings (inventories/vagrant/group_vars/all/vagrant.yml).
# There is no second host list: a host added to the lab inventory is a VM here too.
#
# One VM per inventory host, with one NIC on its zone's network (its `address`) and one on the management network
# (its `ansible_host`); plus the zone router, a VM with a NIC on every zone (each zone's `router` address) and one
# on the management network, standing in for the single-machine lab's router namespace. Memory and CPUs per host
# group come from vagrant_resources.
#
#   ruby -r ./vagrant/topology -e 'puts OmsTopology.load(".").to_json'   prints what the Vagrantfile builds
require "ipaddr"
require "json"
require "yaml"

module OmsTopology
  Network = Struct.new(:name, :ip, :netmask, :mac, :mgmt, keyword_init: true)
  Machine = Struct.new(:name, :zone, :groups, :memory, :cpus, :networks, :routes, :router, keyword_init: true) do
    def to_h
      super.merge(networks: networks.map(&:to_h))
    end
  end
  Topology = Struct.new(:box, :controller, :machines, :router_interfaces, keyword_init: true) do
    def to_json(*args)
      to_h.merge(machines: machines.map(&:to_h)).to_json(*args)
    end
  end

  class Error < StandardError; end

  ROUTER = "router".freeze
  # the router's policy until site.yml loads the zone policy: forward nothing
  ROUTER_BOOT_POLICY = <<~NFT.freeze
    #!/usr/sbin/nft -f
    flush ruleset
    table inet oms_zone_router {
      chain forward { type filter hook forward priority filter; policy drop; }
    }
  NFT

  module_function

  def load(root)
    lab = File.join(root, "inventories", "lab")
    inventory = read_yaml(File.join(lab, "hosts.yml"))
    network = read_yaml(File.join(lab, "group_vars", "all", "network.yml"))
    settings = read_yaml(File.join(root, "inventories", "vagrant", "group_vars", "all", "vagrant.yml"))
    build(inventory, network, settings)
  end

  def read_yaml(path)
    YAML.safe_load(File.read(path), aliases: true) || {}
  rescue Errno::ENOENT, Psych::SyntaxError => e
    raise Error, "vagrant: cannot read #{path}: #{e.message}"
  end

  def build(inventory, network, settings)
    zones = network.fetch("network_zones") { raise Error, "vagrant: network.yml has no network_zones" }
    mgmt = network.fetch("network_mgmt") { raise Error, "vagrant: network.yml has no network_mgmt" }
    mgmt_subnet = IPAddr.new(mgmt.fetch("subnet"))
    hosts = {}
    walk(inventory.fetch("all"), [], hosts)
    raise Error, "vagrant: the lab inventory has no hosts" if hosts.empty?

    resources = settings.fetch("vagrant_resources")
    machines = [router_machine(zones, mgmt, mgmt_subnet, settings, hosts)]
    hosts.each do |name, host|
      vars = host[:vars]
      %w[zone address ansible_host].each do |field|
        raise Error, "vagrant: host #{name} has no #{field} in inventories/lab/hosts.yml" unless vars[field]
      end
      zone = vars["zone"]
      zone_spec = zones.fetch(zone) { raise Error, "vagrant: host #{name}: unknown zone #{zone.inspect}" }
      memory, cpus = size(resources, host[:groups])
      machines << Machine.new(
        name: name, zone: zone, groups: host[:groups], memory: memory, cpus: cpus, router: false,
        networks: [
          Network.new(name: "oms-#{zone}", ip: vars["address"], netmask: netmask(zone_spec["subnet"]), mgmt: false),
          Network.new(name: "oms-mgmt", ip: vars["ansible_host"], netmask: netmask(mgmt["subnet"]), mgmt: true),
        ],
        # every other zone through this zone's router; the default route stays Vagrant's own NAT (packages)
        routes: zones.reject { |z, _| z == zone }.map { |_, spec| { "to" => spec["subnet"], "via" => zone_spec["router"] } },
      )
    end
    Topology.new(
      box: settings.fetch("vagrant_box"),
      controller: mgmt.fetch("controller"),
      machines: machines,
      router_interfaces: zones.keys.to_h { |zone| [zone, settings.fetch("vagrant_router_interface_prefix") + zone] },
    )
  end

  # hosts.yml: a host is defined once with its variables and listed in further groups without them
  def walk(group, lineage, hosts)
    return unless group.is_a?(Hash)
    (group["hosts"] || {}).each do |name, vars|
      host = (hosts[name] ||= { vars: {}, groups: [] })
      host[:vars].merge!(vars) if vars.is_a?(Hash)
      host[:groups] |= lineage
    end
    (group["children"] || {}).each { |child, spec| walk(spec, lineage + [child], hosts) }
  end

  # a host in several groups gets the largest memory and CPU count of them
  def size(resources, groups)
    specs = [resources.fetch("default")] + groups.filter_map { |g| resources[g] }
    [specs.map { |s| s.fetch("memory", 0) }.max, specs.map { |s| s.fetch("cpus", 1) }.max]
  end

  def router_machine(zones, mgmt, mgmt_subnet, settings, hosts)
    address = settings.fetch("vagrant_router_mgmt_address")
    unless mgmt_subnet.include?(IPAddr.new(address))
      raise Error, "vagrant: vagrant_router_mgmt_address #{address} is outside the management subnet #{mgmt['subnet']}"
    end
    taken = hosts.find { |_, h| h[:vars]["ansible_host"] == address }&.first
    taken ||= "the controller" if mgmt["controller"] == address
    raise Error, "vagrant: vagrant_router_mgmt_address #{address} is already used by #{taken}" if taken

    networks = zones.each_with_index.map do |(zone, spec), index|
      # fixed MAC addresses (locally administered) let the router name each NIC after its zone
      Network.new(name: "oms-#{zone}", ip: spec["router"], netmask: netmask(spec["subnet"]),
                  mac: format("029000%06x", index + 1), mgmt: false)
    end
    networks << Network.new(name: "oms-mgmt", ip: address, netmask: netmask(mgmt["subnet"]), mgmt: true)
    router = settings.fetch("vagrant_router")
    Machine.new(name: ROUTER, zone: nil, groups: [], memory: router.fetch("memory"), cpus: router.fetch("cpus"),
                networks: networks, routes: [], router: true)
  end

  def netmask(cidr)
    IPAddr.new(cidr).inspect[%r{/([\d.]+)>}, 1]
  end

  # The router's first boot: each zone NIC (found by its MAC) renamed after its zone and given the zone router's
  # address, forwarding on, and a forward-drop policy until site.yml loads the zone policy (and saves it for boots).
  def router_script(machine, interfaces)
    zones = machine.networks.reject(&:mgmt)
    links = zones.map do |net|
      zone = net.name.delete_prefix("oms-")
      mac = net.mac.scan(/../).join(":")
      <<~SH
        cat > /etc/systemd/network/10-oms-#{zone}.link <<EOF
        [Match]
        MACAddress=#{mac}
        [Link]
        Name=#{interfaces.fetch(zone)}
        EOF
        cat > /etc/network/interfaces.d/oms-#{zone} <<EOF
        auto #{interfaces.fetch(zone)}
        iface #{interfaces.fetch(zone)} inet static
            address #{net.ip}
            netmask #{net.netmask}
        EOF
        current=$(ip -o link | awk -v mac=#{mac} '$0 ~ mac { sub(":$", "", $2); print $2 }')
        if [ -n "$current" ] && [ "$current" != #{interfaces.fetch(zone)} ]; then
          ip link set dev "$current" down
          ip link set dev "$current" name #{interfaces.fetch(zone)}
        fi
        ifup #{interfaces.fetch(zone)} || true
      SH
    end
    <<~SH
      set -eu
      export DEBIAN_FRONTEND=noninteractive
      command -v nft >/dev/null || { apt-get update -q; apt-get install -y -q nftables; }
      echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-oms-router.conf
      sysctl -q -w net.ipv4.ip_forward=1
      mkdir -p /etc/systemd/network
      #{links.join}
      if ! grep -q oms_zone_router /etc/nftables.conf; then
        cat > /etc/nftables.conf <<'EOF'
      #{ROUTER_BOOT_POLICY}EOF
      fi
      systemctl enable --now nftables.service
      nft -f /etc/nftables.conf
    SH
  end

  # Each host's routes to the other zones through its zone router, kept across boots by a unit of its own.
  def routes_script(machine)
    lines = machine.routes.map { |r| "ExecStart=/sbin/ip route replace #{r['to']} via #{r['via']}" }
    <<~SH
      set -eu
      cat > /etc/systemd/system/oms-zone-routes.service <<EOF
      [Unit]
      Description=Routes to the OMS kit's other zones through the zone router
      After=network-online.target
      Wants=network-online.target
      [Service]
      Type=oneshot
      RemainAfterExit=yes
      #{lines.join("\n")}
      [Install]
      WantedBy=multi-user.target
      EOF
      systemctl daemon-reload
      systemctl enable oms-zone-routes.service
      systemctl restart oms-zone-routes.service
    SH
  end
end
