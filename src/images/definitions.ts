// Image definitions: one JSON file per image in images/ (images/<name>.json). Each image adds one
// layer on top of its parent's (`from`); the base images (`from: null`) are made by debootstrap
// or from busybox. Everything is validated on load; a bad file is an ImageDefinitionError that
// names the file and the field.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ImageDefinitionError, UnknownImageError } from './errors.js';
import type { ImageDefinition, LayerBuild } from './types.js';
import { DEBIAN_PACKAGE_PATTERN, NAME_PATTERN, onlyKeys, parseJson, record, string, stringArray, type Fail } from './validate.js';

const SUITE_PATTERN = /^[a-z][a-z0-9-]*$/;

function parseBuild(value: unknown, hasParent: boolean, fail: Fail): LayerBuild {
  const build = record(value, 'build', fail);
  const kind = string(build.kind, 'build.kind', fail);
  switch (kind) {
    case 'debootstrap': {
      onlyKeys(build, ['kind', 'suite', 'variant', 'include'], 'build', fail);
      if (hasParent) fail('build.kind "debootstrap" makes a base layer: "from" must be null');
      const variant = string(build.variant ?? 'minbase', 'build.variant', fail);
      if (variant !== 'minbase' && variant !== 'buildd') fail('build.variant must be "minbase" or "buildd"');
      return {
        kind,
        suite: string(build.suite, 'build.suite', fail, SUITE_PATTERN),
        variant: variant as 'minbase' | 'buildd',
        include: stringArray(build.include ?? [], 'build.include', fail, DEBIAN_PACKAGE_PATTERN),
      };
    }
    case 'busybox':
      onlyKeys(build, ['kind'], 'build', fail);
      if (hasParent) fail('build.kind "busybox" makes a base layer: "from" must be null');
      return { kind };
    case 'chroot': {
      onlyKeys(build, ['kind', 'packages', 'commands'], 'build', fail);
      if (!hasParent) fail('build.kind "chroot" adds a layer on a parent: "from" must name an image');
      const packages = stringArray(build.packages ?? [], 'build.packages', fail, DEBIAN_PACKAGE_PATTERN);
      const commands = stringArray(build.commands ?? [], 'build.commands', fail);
      if (packages.length === 0 && commands.length === 0) fail('build needs "packages" or "commands" (a layer must change something)');
      return { kind, packages, commands };
    }
    default:
      return fail(`build.kind "${kind}" is not one of debootstrap, busybox, chroot`);
  }
}

/** Parses one definition file's text; `file` names it in errors. */
export function parseImageDefinition(text: string, file: string): ImageDefinition {
  const fail: Fail = (problem) => {
    throw new ImageDefinitionError(file, problem);
  };
  const def = record(parseJson(text, fail), 'definition', fail);
  onlyKeys(def, ['$comment', 'name', 'description', 'from', 'build'], 'definition', fail);
  const name = string(def.name, 'name', fail, NAME_PATTERN);
  if (basename(file) !== `${name}.json`) fail(`file must be named ${name}.json after its image`);
  const from = def.from === null || def.from === undefined ? null : string(def.from, 'from', fail, NAME_PATTERN);
  if (from === name) fail('"from" names the image itself');
  return {
    name,
    from,
    description: typeof def.description === 'string' ? def.description : '',
    build: parseBuild(def.build, from !== null, fail),
    file,
  };
}

/** All definitions of a directory, keyed by name, parents checked to exist and form no cycle. */
export class ImageDefinitions {
  private constructor(private readonly byName: Map<string, ImageDefinition>) {}

  static load(dir: string): ImageDefinitions {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
    } catch (err) {
      throw new ImageDefinitionError(dir, `cannot read the definitions directory: ${(err as Error).message}`);
    }
    const byName = new Map<string, ImageDefinition>();
    for (const n of names) {
      const file = join(dir, n);
      const def = parseImageDefinition(readFileSync(file, 'utf8'), file);
      byName.set(def.name, def);
    }
    const defs = new ImageDefinitions(byName);
    for (const def of byName.values()) {
      defs.chain(def.name);
      if (def.build.kind === 'chroot' && def.build.packages.length > 0 && defs.debianSuite(def.name) === undefined) {
        throw new ImageDefinitionError(def.file, 'build.packages need a Debian base: the bottom image of the "from" chain must be built by debootstrap');
      }
    }
    return defs;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  get(name: string): ImageDefinition {
    const def = this.byName.get(name);
    if (!def) throw new UnknownImageError(name, this.names());
    return def;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The Debian suite of the image's debootstrap base, if its base is one. */
  debianSuite(name: string): string | undefined {
    const base = this.chain(name)[0]!.build;
    return base.kind === 'debootstrap' ? base.suite : undefined;
  }

  /** The image and its ancestors, base first: one definition per layer. */
  chain(name: string): ImageDefinition[] {
    const chain: ImageDefinition[] = [];
    const seen = new Set<string>();
    for (let def: ImageDefinition | undefined = this.get(name); def; ) {
      if (seen.has(def.name)) throw new ImageDefinitionError(def.file, `"from" chain loops: ${[...seen, def.name].join(' -> ')}`);
      seen.add(def.name);
      chain.unshift(def);
      if (def.from === null) break;
      const parent = this.byName.get(def.from);
      if (!parent) throw new ImageDefinitionError(def.file, `"from" names image "${def.from}", which has no definition`);
      def = parent;
    }
    return chain;
  }
}
